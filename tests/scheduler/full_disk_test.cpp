// A full disk under the scheduler: writes of a job's state and files fail with NO_SPACE for a
// while. A worker waits it out rather than leave a job "running" in the store with no one
// running it; an output that cannot be written fails its job with storage_full and nothing
// partial is listed; a client's cancel that cannot be recorded leaves the job queued.
#include <gtest/gtest.h>

#include <atomic>
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

core::Error disk_full() {
    return core::Error(core::ErrorCode::NO_SPACE, "write: No space left on device");
}

// The SQLite store, whose job writes fail while `full` is set (all of them, or only those
// recording a final state).
class FillingJobStore final : public JobStore {
  public:
    explicit FillingJobStore(const std::filesystem::path& file) : store_(file) {}
    std::atomic<bool> full{false};
    std::atomic<bool> only_final{false};
    std::atomic<int> refused{0};

    void create_session(const Session& s) override { store_.create_session(s); }
    std::optional<Session> find_session(const std::string& id) override {
        return store_.find_session(id);
    }
    void set_session_paused(const std::string& id, bool p) override {
        store_.set_session_paused(id, p);
    }
    void delete_session(const std::string& id) override { store_.delete_session(id); }
    std::vector<std::string> expired_sessions(int64_t now) override {
        return store_.expired_sessions(now);
    }
    bool touch_session(const std::string& id, int64_t now, int64_t e) override {
        return store_.touch_session(id, now, e);
    }
    void insert_job(Job& job) override {
        refuse_if_full(job);
        store_.insert_job(job);
    }
    std::optional<Job> insert_job_unless_key_held(Job& job) override {
        refuse_if_full(job);
        return store_.insert_job_unless_key_held(job);
    }
    std::optional<Job> find_job(const std::string& s, const std::string& id) override {
        return store_.find_job(s, id);
    }
    std::optional<Job> find_job_by_idempotency_key(const std::string& s,
                                                   const std::string& key) override {
        return store_.find_job_by_idempotency_key(s, key);
    }
    bool update_job(Job& job) override {
        refuse_if_full(job);
        return store_.update_job(job);
    }
    bool delete_job(const std::string& s, const std::string& id) override {
        return store_.delete_job(s, id);
    }
    std::vector<Job> list_jobs(const std::string& s, const JobQuery& q) override {
        return store_.list_jobs(s, q);
    }
    std::vector<std::pair<std::string, std::string>> finished_before(int64_t ms) override {
        return store_.finished_before(ms);
    }
    std::map<JobStatus, int64_t> count_by_status() override { return store_.count_by_status(); }
    int64_t last_update_seq() override { return store_.last_update_seq(); }
    std::vector<Job> unfinished_jobs() override { return store_.unfinished_jobs(); }

  private:
    void refuse_if_full(const Job& job) {
        if (full && (!only_final || is_final(job.status))) {
            ++refused;
            throw disk_full();
        }
    }
    SqliteJobStore store_;
};

// The local result store, whose puts of outputs fail while `full` is set.
class FillingResultStore final : public ResultStore {
  public:
    explicit FillingResultStore(const std::filesystem::path& root) : store_(root) {}
    std::atomic<bool> full{false};

    void put(const std::string& s,
             const std::string& j,
             const std::string& name,
             const std::vector<uint8_t>& bytes) override {
        if (full && name != "input")
            throw disk_full();
        store_.put(s, j, name, bytes);
    }
    std::optional<std::vector<uint8_t>> get(const std::string& s,
                                            const std::string& j,
                                            const std::string& name) override {
        return store_.get(s, j, name);
    }
    uint64_t session_bytes(const std::string& s) override { return store_.session_bytes(s); }
    void remove_job(const std::string& s, const std::string& j) override {
        store_.remove_job(s, j);
    }
    void remove_session(const std::string& s) override { store_.remove_session(s); }

  private:
    LocalResultStore store_;
};

class FullDisk : public ::testing::Test {
  protected:
    FullDisk() { test::add_srvgg_models(dir_.path() / "models", {"srvgg_x4.pth"}); }

    SubmitRequest request(int seed) const {
        SubmitRequest r;
        r.session_id = session_;
        r.model = "srvgg_x4";
        r.input.image = test::test_png(12, 10, seed);
        return r;
    }
    Job wait_final(const std::string& id) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline) {
            const auto job = jobs_.find_job(session_, id);
            if (job && is_final(job->status))
                return *job;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ADD_FAILURE() << "job " << id << " never finished";
        return {};
    }

    test::TempDir dir_;
    FillingJobStore jobs_{dir_.path() / "kiln.db"};
    FillingResultStore results_{dir_.path() / "results"};
    weights::ModelRegistry registry_{dir_.path() / "models"};
    std::unique_ptr<engine::Backend> backend_ = engine::cpu::make_cpu_backend();
    std::string session_ = random_id();
    SchedulerOptions options_ = [] {
        SchedulerOptions o;
        o.threads_per_worker = 1;
        return o;
    }();
};

TEST_F(FullDisk, AFinishedJobIsRecordedOnceTheDiskHasRoomAgain) {
    Scheduler scheduler(jobs_, results_, registry_, *backend_, options_);
    scheduler.start();
    jobs_.only_final = true;
    jobs_.full = true;
    const std::string id = scheduler.submit(request(1)).job.id;
    // The run ends but its end cannot be written: the store still says running.
    while (jobs_.refused < 2)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(jobs_.find_job(session_, id)->status, JobStatus::RUNNING);
    jobs_.full = false;
    const Job done = wait_final(id);
    EXPECT_EQ(done.status, JobStatus::SUCCEEDED);
    EXPECT_EQ(done.attempts, 1);
    ASSERT_EQ(done.outputs.size(), 1u);
    EXPECT_TRUE(results_.get(session_, id, "output-0.png"));
}

TEST_F(FullDisk, AJobThatCannotStartWaitsAndThenRuns) {
    Scheduler scheduler(jobs_, results_, registry_, *backend_, options_);
    scheduler.start();
    jobs_.full = true;  // the submission's own insert is refused too
    EXPECT_THROW(
        {
            try {
                scheduler.submit(request(2));
            } catch (const core::Error& e) {
                EXPECT_EQ(e.code(), core::ErrorCode::NO_SPACE);
                throw;
            }
        },
        core::Error);
    EXPECT_EQ(results_.session_bytes(session_), 0u) << "the refused job's input was kept";
    jobs_.full = false;
    scheduler.pause_workers();
    const std::string id = scheduler.submit(request(3)).job.id;
    jobs_.full = true;  // marking it running fails until the disk has room
    scheduler.resume_workers();
    while (jobs_.refused < 3)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(jobs_.find_job(session_, id)->status, JobStatus::QUEUED);
    jobs_.full = false;
    const Job done = wait_final(id);
    EXPECT_EQ(done.status, JobStatus::SUCCEEDED);
    EXPECT_EQ(done.attempts, 1);
}

TEST_F(FullDisk, AnOutputThatCannotBeWrittenFailsItsJobWithStorageFull) {
    Scheduler scheduler(jobs_, results_, registry_, *backend_, options_);
    scheduler.start();
    results_.full = true;
    const std::string id = scheduler.submit(request(4)).job.id;
    const Job failed = wait_final(id);
    EXPECT_EQ(failed.status, JobStatus::FAILED);
    ASSERT_TRUE(failed.error);
    EXPECT_EQ(failed.error->code, "storage_full");
    EXPECT_TRUE(failed.outputs.empty());
    results_.full = false;
    const std::string again = scheduler.retry(session_, id).job.id;
    EXPECT_EQ(wait_final(again).status, JobStatus::SUCCEEDED);
}

TEST_F(FullDisk, ACancelThatCannotBeRecordedLeavesTheJobQueued) {
    options_.start_paused = true;
    Scheduler scheduler(jobs_, results_, registry_, *backend_, options_);
    scheduler.start();
    const std::string id = scheduler.submit(request(5)).job.id;
    jobs_.full = true;
    EXPECT_THROW(scheduler.cancel(session_, id), core::Error);
    const auto queued = scheduler.get(session_, id);
    ASSERT_TRUE(queued);
    EXPECT_EQ(queued->status, JobStatus::QUEUED);
    EXPECT_EQ(queued->position, 0);
    EXPECT_EQ(scheduler.queue_info(session_).queued, 1u);
    jobs_.full = false;
    scheduler.resume_workers();
    EXPECT_EQ(wait_final(id).status, JobStatus::SUCCEEDED);
}

TEST_F(FullDisk, StoppingEndsTheWaitAndTheNextStartRerunsTheJob) {
    {
        Scheduler scheduler(jobs_, results_, registry_, *backend_, options_);
        scheduler.start();
        jobs_.only_final = true;
        jobs_.full = true;
        scheduler.submit(request(6));
        while (jobs_.refused < 1)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        scheduler.stop();  // returns although the store still refuses
    }
    jobs_.full = false;
    const auto left = jobs_.unfinished_jobs();
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].status, JobStatus::RUNNING);
    Scheduler again(jobs_, results_, registry_, *backend_, options_);
    again.start();
    const Job done = wait_final(left[0].id);
    EXPECT_EQ(done.status, JobStatus::SUCCEEDED);
    EXPECT_EQ(done.attempts, 2);
}

}  // namespace
}  // namespace kiln::scheduler
