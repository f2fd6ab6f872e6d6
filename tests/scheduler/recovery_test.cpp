// The scheduler without HTTP: restart recovery and the model cache.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "scheduler/ids.h"
#include "scheduler/local_result_store.h"
#include "scheduler/scheduler.h"
#include "scheduler/sqlite_job_store.h"
#include "tests/scheduler/temp_dir.h"
#include "tests/scheduler/test_inputs.h"

namespace kiln::scheduler {
namespace {

class SchedulerTest : public ::testing::Test {
  protected:
    SchedulerTest() { test::add_srvgg_models(dir_.path() / "models", {"srvgg_x4.pth"}); }
    test::TempDir dir_;
};

Job stored_job(JobStore& jobs, ResultStore& results, const std::string& session, int seed) {
    Job job;
    job.id = random_id();
    job.session_id = session;
    job.model = "srvgg_x4";
    job.created_at = now_ms();
    results.put(session, job.id, "input", test::test_png(12, 10, seed));
    jobs.insert_job(job);
    return job;
}

bool wait_all_final(JobStore& jobs, const std::string& session, size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
        JobQuery q;
        q.limit = 100;
        const auto list = jobs.list_jobs(session, q);
        size_t final = 0;
        for (const Job& j : list)
            final += is_final(j.status) ? 1 : 0;
        if (final == n)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

TEST_F(SchedulerTest, RestartRequeuesQueuedAndRerunsOrFailsRunning) {
    SqliteJobStore jobs(dir_.path() / "kiln.db");
    LocalResultStore results(dir_.path() / "results");
    weights::ModelRegistry registry(dir_.path() / "models");
    auto backend = engine::cpu::make_cpu_backend();
    const std::string session = random_id();

    // What a crash leaves behind: queued jobs, a job interrupted once and one interrupted
    // for the third time.
    Job queued1 = stored_job(jobs, results, session, 1);
    Job running_once = stored_job(jobs, results, session, 2);
    running_once.status = JobStatus::RUNNING;
    running_once.attempts = 1;
    jobs.update_job(running_once);
    Job running_thrice = stored_job(jobs, results, session, 3);
    running_thrice.status = JobStatus::RUNNING;
    running_thrice.attempts = 3;
    jobs.update_job(running_thrice);
    Job queued2 = stored_job(jobs, results, session, 4);

    std::mutex mutex;
    std::vector<std::string> started;
    SchedulerOptions options;
    options.threads_per_worker = 1;
    Scheduler scheduler(jobs, results, registry, *backend, options, [&](const SchedulerEvent& e) {
        if (e.kind == SchedulerEventKind::STARTED) {
            std::lock_guard lock(mutex);
            started.push_back(e.job_id);
        }
    });
    scheduler.start();
    ASSERT_TRUE(wait_all_final(jobs, session, 4));

    EXPECT_EQ(started, (std::vector<std::string>{queued1.id, running_once.id, queued2.id}));
    const auto once = jobs.find_job(session, running_once.id);
    EXPECT_EQ(once->status, JobStatus::SUCCEEDED);
    EXPECT_EQ(once->attempts, 2);
    const auto thrice = jobs.find_job(session, running_thrice.id);
    EXPECT_EQ(thrice->status, JobStatus::FAILED);
    ASSERT_TRUE(thrice->error);
    EXPECT_EQ(thrice->error->code, "interrupted");
    for (const Job& j : {queued1, queued2}) {
        const auto done = jobs.find_job(session, j.id);
        EXPECT_EQ(done->status, JobStatus::SUCCEEDED);
        ASSERT_EQ(done->outputs.size(), 1u);
        EXPECT_EQ(done->outputs[0].width, 48);
        EXPECT_TRUE(results.get(session, j.id, "output-0.png"));
    }
}

TEST_F(SchedulerTest, ModelCacheLoadsOnceForConcurrentUsers) {
    weights::ModelRegistry registry(dir_.path() / "models");
    ModelCache cache(registry, size_t{1} << 30);
    std::vector<std::shared_ptr<const TaskModel>> got(4);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < got.size(); ++i)
        threads.emplace_back([&, i] { got[i] = cache.acquire("srvgg_x4"); });
    for (auto& t : threads)
        t.join();
    for (const auto& m : got)
        EXPECT_EQ(m.get(), got[0].get());
    EXPECT_EQ(cache.loaded().size(), 1u);
    EXPECT_THROW(cache.acquire("nope"), core::Error);
}

TEST_F(SchedulerTest, ModelCacheEvictsLeastRecentlyUsedButNotInUse) {
    test::add_srvgg_models(dir_.path() / "models", {"other.pth"});
    weights::ModelRegistry registry(dir_.path() / "models");
    ModelCache cache(registry, 1);  // every model is over budget
    {
        auto held = cache.acquire("srvgg_x4");
        cache.acquire("other");  // cannot evict srvgg_x4: held
        EXPECT_EQ(cache.loaded().size(), 2u);
    }
    cache.acquire("srvgg_x4");  // "other" is unused and least recent
    const auto loaded = cache.loaded();
    ASSERT_EQ(loaded.size(), 1u);
    EXPECT_EQ(loaded[0].name, "srvgg_x4");
}

}  // namespace
}  // namespace kiln::scheduler
