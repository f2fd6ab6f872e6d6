// Two Schedulers ("nodes") on one Redis queue and store and one shared result folder: a job
// submitted on one node runs on another, a dead node's job is taken over after its claim
// expires (re-run, or failed "interrupted" past max_attempts), a node that renews its claim
// keeps a job that runs longer than the claim timeout, a cancel asked on one node stops the
// job another node runs (or one it takes over from a dead node), and the queue repair pushes
// a stored job the queue lost.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "scheduler/ids.h"
#include "scheduler/local_result_store.h"
#include "scheduler/redis/redis_job_queue.h"
#include "scheduler/redis/redis_job_store.h"
#include "scheduler/scheduler.h"
#include "tests/redis/redis_server.h"
#include "tests/scheduler/temp_dir.h"
#include "tests/scheduler/test_inputs.h"

namespace kiln::scheduler {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds claim_timeout(500);

// One node: its own connections, backend and scheduler on the shared Redis and folders.
struct Node {
    Node(const RedisAddress& address,
         const std::string& prefix,
         const std::string& id,
         const std::filesystem::path& dir,
         SchedulerOptions options,
         milliseconds claim_renew)
        : store(address, prefix),
          results(dir / "results"),
          registry(dir / "models"),
          backend(engine::cpu::make_cpu_backend()) {
        options.shared_queue = true;
        options.threads_per_worker = 1;
        options.queue_poll = milliseconds(50);
        options.claim_renew = claim_renew;
        scheduler = std::make_unique<Scheduler>(
            store, results, registry, *backend, options,
            [this](const SchedulerEvent& e) {
                std::lock_guard lock(mutex_);
                if (e.kind == SchedulerEventKind::STARTED)
                    started_.push_back(e.job_id);
                if (e.kind == SchedulerEventKind::FINISHED)
                    finished_.push_back(e.job_id);
            },
            std::make_unique<RedisJobQueue>(address, prefix, id, claim_timeout));
    }

    std::vector<std::string> started() const {
        std::lock_guard lock(mutex_);
        return started_;
    }
    std::vector<std::string> finished() const {
        std::lock_guard lock(mutex_);
        return finished_;
    }

    RedisJobStore store;
    LocalResultStore results;
    weights::ModelRegistry registry;
    std::unique_ptr<engine::Backend> backend;
    mutable std::mutex mutex_;
    std::vector<std::string> started_;     // the jobs this node started
    std::vector<std::string> finished_;    // and those it recorded as final
    std::unique_ptr<Scheduler> scheduler;  // last: stopped before the rest goes
};

class RedisSchedulerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        test::skip_unless_redis_available();
        if (!test::RedisServer::available())
            return;
        test::add_srvgg_models(dir_.path() / "models", {"srvgg_x4.pth"});
        address_ = test::shared_redis_server().address();
        prefix_ = test::fresh_key_prefix();
    }

    std::unique_ptr<Node> node(const std::string& id,
                               SchedulerOptions options = {},
                               milliseconds claim_renew = milliseconds(100)) const {
        return std::make_unique<Node>(address_, prefix_, id, dir_.path(), options, claim_renew);
    }

    SubmitRequest request(int width, int height) const {
        SubmitRequest r;
        r.session_id = session_;
        r.model = "srvgg_x4";
        r.input.image = test::test_png(width, height, 1);
        return r;
    }

    // A job left behind by a node that died while running it: stored as running after
    // `attempts` runs, its claim held by a queue object that is gone and expires.
    Job dead_node_job(JobStore& jobs, ResultStore& results, int attempts) const {
        Job job;
        job.id = random_id();
        job.session_id = session_;
        job.model = "srvgg_x4";
        job.created_at = now_ms();
        results.put(session_, job.id, "input", test::test_png(12, 10, 2));
        jobs.insert_job(job);
        RedisJobQueue dead(address_, prefix_, "dead-node", claim_timeout);
        dead.push(session_, job.id, job.priority);
        const auto popped = dead.pop();
        EXPECT_TRUE(popped && popped->job_id == job.id);
        job.status = JobStatus::RUNNING;
        job.started_at = now_ms();
        job.attempts = attempts;
        jobs.update_job(job);
        return job;
    }

    size_t queued() const { return RedisJobQueue(address_, prefix_, "observer").size(); }

    static SchedulerOptions paused_options() {
        SchedulerOptions paused;
        paused.start_paused = true;
        return paused;
    }

    // Starts both nodes (b's workers paused), submits a job on a big enough to run for
    // several claim timeouts on one thread, waits (up to 30 s) until it runs on a, then lets
    // b poll: from then on b would take the job over if a's claim expired.
    SubmitResult start_long_job_on(Node& a, Node& b) const {
        a.scheduler->start();
        b.scheduler->start();
        SubmitResult submitted = a.scheduler->submit(request(1024, 1024));
        const auto give_up = Clock::now() + std::chrono::seconds(30);
        while (a.started().empty() && Clock::now() < give_up)
            std::this_thread::sleep_for(milliseconds(5));
        b.scheduler->resume_workers();
        return submitted;
    }

    test::TempDir dir_;
    RedisAddress address_;
    std::string prefix_;
    std::string session_ = random_id();
};

std::optional<Job> wait_final(JobStore& jobs,
                              const std::string& session,
                              const std::string& id,
                              milliseconds within = milliseconds(60000)) {
    const auto give_up = Clock::now() + within;
    while (Clock::now() < give_up) {
        auto job = jobs.find_job(session, id);
        if (job && is_final(job->status))
            return job;
        std::this_thread::sleep_for(milliseconds(20));
    }
    return std::nullopt;
}

TEST_F(RedisSchedulerTest, JobSubmittedOnOneNodeRunsOnAnother) {
    auto a = node("node-a", paused_options());
    auto b = node("node-b");
    a->scheduler->start();
    b->scheduler->start();

    const SubmitResult submitted = a->scheduler->submit(request(12, 10));
    const auto done = wait_final(a->store, session_, submitted.job.id);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, JobStatus::SUCCEEDED);
    EXPECT_EQ(done->attempts, 1);
    EXPECT_EQ(b->started(), std::vector<std::string>{submitted.job.id});
    EXPECT_TRUE(a->started().empty());
    const auto seen = a->scheduler->get(session_, submitted.job.id);
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->status, JobStatus::SUCCEEDED);
    const auto output = a->results.get(session_, submitted.job.id, "output-0.png");
    ASSERT_TRUE(output);
    EXPECT_FALSE(output->empty());
}

TEST_F(RedisSchedulerTest, DeadNodesJobIsRerunAfterItsClaimExpires) {
    auto b = node("node-b");
    const Job job = dead_node_job(b->store, b->results, 1);
    const auto died = Clock::now();
    b->scheduler->start();
    EXPECT_EQ(queued(), 0u);  // start() pushed nothing: the claim brings the job back

    const auto done = wait_final(b->store, session_, job.id);
    ASSERT_TRUE(done);
    EXPECT_GE(Clock::now() - died, claim_timeout);
    EXPECT_EQ(done->status, JobStatus::SUCCEEDED);
    EXPECT_EQ(done->attempts, 2);
    EXPECT_EQ(b->started(), std::vector<std::string>{job.id});
    EXPECT_TRUE(b->results.get(session_, job.id, "output-0.png"));
}

TEST_F(RedisSchedulerTest, DeadNodesJobPastMaxAttemptsFailsInterrupted) {
    SchedulerOptions options;
    options.max_attempts = 3;
    auto b = node("node-b", options);
    const Job job = dead_node_job(b->store, b->results, 3);
    b->scheduler->start();

    const auto done = wait_final(b->store, session_, job.id);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, JobStatus::FAILED);
    ASSERT_TRUE(done->error);
    EXPECT_EQ(done->error->code, "interrupted");
    EXPECT_EQ(done->attempts, 3);
    EXPECT_TRUE(b->started().empty());
    EXPECT_EQ(queued(), 0u);
}

TEST_F(RedisSchedulerTest, RenewedClaimKeepsALongJobOnItsNode) {
    auto a = node("node-a");
    auto b = node("node-b", paused_options());
    const SubmitResult submitted = start_long_job_on(*a, *b);
    ASSERT_FALSE(a->started().empty());

    const auto done = wait_final(a->store, session_, submitted.job.id, milliseconds(120000));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, JobStatus::SUCCEEDED);
    EXPECT_EQ(done->attempts, 1);
    EXPECT_TRUE(b->started().empty());
    EXPECT_GT(done->finished_at - done->started_at, 2 * claim_timeout.count())
        << "the job ran too briefly to show the renewals";
}

// A node that renews too late (a long pause, a partition) finds its job taken over: it stops
// its run and records nothing more, and the node that took it over owns the job.
TEST_F(RedisSchedulerTest, NodeThatLostItsClaimRecordsNothing) {
    auto a = node("node-a", {}, milliseconds(800));  // first renewal after the claim expired
    auto b = node("node-b", paused_options());
    const SubmitResult submitted = start_long_job_on(*a, *b);
    ASSERT_FALSE(a->started().empty());

    const auto done = wait_final(a->store, session_, submitted.job.id, milliseconds(120000));
    ASSERT_TRUE(done);
    EXPECT_EQ(b->started(), std::vector<std::string>{submitted.job.id});
    EXPECT_EQ(done->status, JobStatus::SUCCEEDED);
    EXPECT_EQ(done->attempts, 2);
    // A's worker lets the job go at its next cancel check.
    const auto idle_by = Clock::now() + std::chrono::seconds(30);
    while (a->scheduler->stats().running > 0 && Clock::now() < idle_by)
        std::this_thread::sleep_for(milliseconds(10));
    EXPECT_EQ(a->scheduler->stats().running, 0u);
    EXPECT_TRUE(a->finished().empty());
    const auto after = a->store.find_job(session_, submitted.job.id);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, JobStatus::SUCCEEDED);
    EXPECT_EQ(after->attempts, 2);
}

}  // namespace
}  // namespace kiln::scheduler

namespace kiln::scheduler {
namespace {

TEST_F(RedisSchedulerTest, RepairQueuesAStoredJobTheQueueLost) {
    auto a = node("node-a");
    // Stored as queued, never pushed: what a submission leaves when Redis goes away between
    // its store write and its queue write.
    Job job;
    job.id = random_id();
    job.session_id = session_;
    job.model = "srvgg_x4";
    job.created_at = now_ms() - 120000;
    a->results.put(session_, job.id, "input", test::test_png(12, 10, 3));
    a->store.insert_job(job);
    Job young = job;
    young.id = random_id();
    young.created_at = now_ms();  // may be a submission about to push: left alone
    a->results.put(session_, young.id, "input", test::test_png(12, 10, 4));
    a->store.insert_job(young);
    a->scheduler->start();

    EXPECT_EQ(a->scheduler->repair_queue(std::chrono::minutes(1)), 1u);
    const auto done = wait_final(a->store, session_, job.id);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, JobStatus::SUCCEEDED);
    EXPECT_EQ(done->attempts, 1);
    EXPECT_EQ(a->store.find_job(session_, young.id)->status, JobStatus::QUEUED);
    // Nothing left to repair: a second pass pushes nothing, the job ran once.
    EXPECT_EQ(a->scheduler->repair_queue(std::chrono::minutes(1)), 0u);
    EXPECT_EQ(a->started(), std::vector<std::string>{job.id});
}

TEST_F(RedisSchedulerTest, CancelAskedOnAnotherNodeStopsTheRunningJob) {
    auto a = node("node-a");
    auto b = node("node-b", paused_options());  // b only answers the client
    a->scheduler->start();
    b->scheduler->start();
    SubmitRequest tiled = request(1024, 1024);
    tiled.params_json = R"({"tile": 128})";  // 64 tiles: a cancel is read between them
    const SubmitResult submitted = a->scheduler->submit(tiled);
    const auto give_up = Clock::now() + std::chrono::seconds(30);
    while (a->started().empty() && Clock::now() < give_up)
        std::this_thread::sleep_for(milliseconds(5));
    ASSERT_EQ(a->started(), std::vector<std::string>{submitted.job.id});
    EXPECT_EQ(b->scheduler->cancel(session_, submitted.job.id), CancelOutcome::STOPPING);
    const auto done = wait_final(b->store, session_, submitted.job.id, milliseconds(30000));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, JobStatus::CANCELLED);
    EXPECT_TRUE(done->outputs.empty());
    EXPECT_EQ(a->finished(), std::vector<std::string>{submitted.job.id});
    EXPECT_THROW(b->scheduler->cancel(session_, submitted.job.id), SchedulerError);
}

TEST_F(RedisSchedulerTest, CancelOfADeadNodesJobEndsItWhereItIsTakenOver) {
    auto b = node("node-b", paused_options());
    const Job job = dead_node_job(b->store, b->results, 1);
    b->scheduler->start();
    EXPECT_EQ(b->scheduler->cancel(session_, job.id), CancelOutcome::STOPPING);
    b->scheduler->resume_workers();
    const auto done = wait_final(b->store, session_, job.id);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, JobStatus::CANCELLED);
    EXPECT_EQ(done->attempts, 1);  // not run again
}

}  // namespace
}  // namespace kiln::scheduler
