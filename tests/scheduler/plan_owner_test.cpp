// Plans are destroyed on the thread of the worker that built them (on CUDA: the thread that
// owns the context's stream and captures graphs on it), never on the thread that happens to
// evict their model. A recording backend wraps the CPU backend and logs, per plan, the thread
// that compiled it and the thread that destroyed it.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "image/image.h"
#include "scheduler/ids.h"
#include "scheduler/job_runner.h"
#include "scheduler/local_result_store.h"
#include "scheduler/model_cache.h"
#include "scheduler/scheduler.h"
#include "scheduler/sqlite_job_store.h"
#include "tests/scheduler/temp_dir.h"
#include "tests/scheduler/test_inputs.h"

namespace kiln::scheduler {
namespace {

constexpr size_t budget = size_t{1} << 30;

struct PlanLife {
    std::thread::id built;
    std::thread::id destroyed;
};

struct PlanLog {
    std::mutex mutex;
    std::vector<PlanLife> lives;  // one per plan, in build order
    size_t built() {
        std::lock_guard lock(mutex);
        return lives.size();
    }
    std::vector<PlanLife> snapshot() {
        std::lock_guard lock(mutex);
        return lives;
    }
};

class RecordingPlan final : public engine::Plan {
  public:
    RecordingPlan(std::unique_ptr<engine::Plan> inner, std::shared_ptr<PlanLog> log)
        : inner_(std::move(inner)), log_(std::move(log)) {
        std::lock_guard lock(log_->mutex);
        index_ = log_->lives.size();
        log_->lives.push_back({std::this_thread::get_id(), {}});
    }
    ~RecordingPlan() override {
        std::lock_guard lock(log_->mutex);
        log_->lives[index_].destroyed = std::this_thread::get_id();
    }
    size_t peak_bytes() const override { return inner_->peak_bytes(); }
    size_t weight_bytes() const override { return inner_->weight_bytes(); }
    void run_batch(std::span<const float* const> inputs,
                   float* output,
                   int batch,
                   const engine::RunControl& control) override {
        inner_->run_batch(inputs, output, batch, control);
    }
    std::string describe() const override { return inner_->describe(); }

  private:
    std::unique_ptr<engine::Plan> inner_;
    std::shared_ptr<PlanLog> log_;
    size_t index_ = 0;
};

class RecordingBackend final : public engine::Backend {
  public:
    explicit RecordingBackend(std::shared_ptr<PlanLog> log) : log_(std::move(log)) {}
    engine::BackendKind kind() const override { return inner_->kind(); }
    std::string name() const override { return "recording " + inner_->name(); }
    std::unique_ptr<engine::ExecutionContext> create_context(
        const engine::ContextOptions& options) override {
        return inner_->create_context(options);
    }
    std::unique_ptr<engine::Plan> compile(const engine::Graph& graph,
                                          engine::ExecutionContext& context) override {
        return std::make_unique<RecordingPlan>(inner_->compile(graph, context), log_);
    }
    size_t estimate_peak_bytes(const engine::Graph& graph) const override {
        return inner_->estimate_peak_bytes(graph);
    }

  private:
    std::unique_ptr<engine::Backend> inner_ = engine::cpu::make_cpu_backend();
    std::shared_ptr<PlanLog> log_;
};

// A thread that runs what it is given, one call at a time (a worker stand-in): its id stays
// the same, and no other thread reuses it, while the test runs.
class TestWorker {
  public:
    TestWorker() : thread_([this] { loop(); }) {}
    ~TestWorker() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }
    std::thread::id id() const { return thread_.get_id(); }
    void call(std::function<void()> f) {
        std::packaged_task<void()> task(std::move(f));
        auto done = task.get_future();
        {
            std::lock_guard lock(mutex_);
            tasks_.push_back(std::move(task));
        }
        wake_.notify_all();
        done.get();  // rethrows
    }

  private:
    void loop() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
            if (tasks_.empty())
                return;
            auto task = std::move(tasks_.front());
            tasks_.pop_front();
            lock.unlock();
            task();
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::packaged_task<void()>> tasks_;
    bool stop_ = false;
    std::thread thread_;
};

class PlanOwnerTest : public ::testing::Test {
  protected:
    PlanOwnerTest() {
        test::add_srvgg_models(dir_.path() / "models", {"srvgg_x4.pth", "other.pth"});
    }

    test::TempDir dir_;
    std::shared_ptr<PlanLog> log_ = std::make_shared<PlanLog>();
    RecordingBackend backend_{log_};
};

// An eviction caused on another thread only retires the plans; the owning worker destroys
// them, on its own thread, when it releases its retired plans.
TEST_F(PlanOwnerTest, EvictionLeavesPlansToTheirWorker) {
    weights::ModelRegistry registry(dir_.path() / "models");
    ModelCache cache(registry, 1);  // every model is over budget
    TestWorker worker;
    std::unique_ptr<engine::ExecutionContext> context;
    worker.call([&] {
        context = backend_.create_context(engine::ContextOptions{1});
        const auto before = static_cast<int64_t>(context->pool().bytes_in_use());
        test::run_on_worker(cache, "srvgg_x4", backend_, *context, test::test_png(12, 10, 1),
                            budget);
        cache.account_plans("srvgg_x4", *context,
                            static_cast<int64_t>(context->pool().bytes_in_use()) - before, budget);
    });
    ASSERT_GE(log_->built(), 1u);
    EXPECT_GT(context->pool().bytes_in_use(), 0u);  // cached with the model

    // Another thread (a submit, another worker) loads a model: srvgg_x4 is evicted.
    cache.acquire("other");
    ASSERT_EQ(cache.loaded().size(), 1u);
    EXPECT_EQ(cache.loaded()[0].name, "other");
    for (const PlanLife& life : log_->snapshot())
        EXPECT_EQ(life.destroyed, std::thread::id()) << "a plan was destroyed by the evictor";
    EXPECT_TRUE(cache.has_retired(*context));

    worker.call([&] { cache.release_retired(*context); });
    EXPECT_FALSE(cache.has_retired(*context));
    EXPECT_EQ(context->pool().bytes_in_use(), 0u);
    EXPECT_GT(cache.plans_released(*context), 0u);
    for (const PlanLife& life : log_->snapshot()) {
        EXPECT_EQ(life.built, worker.id());
        EXPECT_EQ(life.destroyed, worker.id());
    }
    worker.call([&] { context.reset(); });
}

// The whole scheduler: a submit's admission (on the test's thread) evicts the model whose
// plans a worker keeps; every plan is still destroyed on the thread that built it.
TEST_F(PlanOwnerTest, SchedulerWorkersDestroyTheirOwnPlans) {
    SqliteJobStore jobs(dir_.path() / "jobs.db");
    LocalResultStore results(dir_.path() / "results");
    weights::ModelRegistry registry(dir_.path() / "models");
    SchedulerOptions options;
    options.workers = 2;
    options.threads_per_worker = 1;
    options.model_cache_bytes = 1;  // one model at a time: each submit of the other evicts
    {
        Scheduler scheduler(jobs, results, registry, backend_, options);
        scheduler.start();
        const std::string session = random_id();
        int submitted = 0;
        for (const char* model : {"srvgg_x4", "other", "srvgg_x4", "other"}) {
            SubmitRequest request;
            request.session_id = session;
            request.model = model;
            request.input.image = test::test_png(12, 12, submitted++);
            scheduler.submit(std::move(request));
            // One job at a time, so each submit's eviction meets the previous job's plans.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
            for (;;) {
                JobQuery query;
                query.status = JobStatus::SUCCEEDED;
                query.limit = 100;
                if (static_cast<int>(jobs.list_jobs(session, query).size()) == submitted)
                    break;
                ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "jobs did not finish";
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
        }
        scheduler.stop();
    }
    const auto lives = log_->snapshot();
    ASSERT_GE(lives.size(), 2u);
    for (const PlanLife& life : lives) {
        EXPECT_NE(life.destroyed, std::thread::id()) << "a plan was never destroyed";
        EXPECT_EQ(life.destroyed, life.built) << "a plan was destroyed off its worker's thread";
        EXPECT_NE(life.destroyed, std::this_thread::get_id());
    }
}

}  // namespace
}  // namespace kiln::scheduler
