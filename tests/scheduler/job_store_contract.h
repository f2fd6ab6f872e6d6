// The contract every JobStore keeps (scheduler/job_store.h), as value-parameterized tests:
// a test binary includes this header once and instantiates JobStoreContract with one
// factory per implementation (SQLite in tests/scheduler, Redis in tests/redis).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "scheduler/ids.h"
#include "scheduler/job_store.h"

namespace kiln::scheduler {

// One database (a SQLite file, a Redis key prefix); open() gives a store on it: a second
// open() after the first store is gone sees what the first wrote.
class StoreBacking {
  public:
    virtual ~StoreBacking() = default;
    virtual std::unique_ptr<JobStore> open() = 0;
};

struct StoreFactory {
    const char* name;
    // None when the implementation cannot run here, after recording a skip or a failure.
    std::function<std::unique_ptr<StoreBacking>()> make;
};

// Stands in for the store when the factory made no backing: gtest runs no test body then, so
// `store` is bound to something without touching a null pointer.
class UnusedStore final : public JobStore {
  public:
    void create_session(const Session&) override { unused(); }
    std::optional<Session> find_session(const std::string&) override { unused(); }
    void set_session_paused(const std::string&, bool) override { unused(); }
    void delete_session(const std::string&) override { unused(); }
    std::vector<std::string> expired_sessions(int64_t) override { unused(); }
    bool touch_session(const std::string&, int64_t, int64_t) override { unused(); }
    void insert_job(Job&) override { unused(); }
    std::optional<Job> insert_job_unless_key_held(Job&) override { unused(); }
    std::optional<Job> find_job(const std::string&, const std::string&) override { unused(); }
    std::optional<Job> find_job_by_idempotency_key(const std::string&,
                                                   const std::string&) override {
        unused();
    }
    bool update_job(Job&) override { unused(); }
    bool delete_job(const std::string&, const std::string&) override { unused(); }
    std::vector<Job> list_jobs(const std::string&, const JobQuery&) override { unused(); }
    std::vector<std::pair<std::string, std::string>> finished_before(int64_t) override { unused(); }
    std::map<JobStatus, int64_t> count_by_status() override { unused(); }
    int64_t last_update_seq() override { unused(); }
    std::vector<Job> unfinished_jobs() override { unused(); }

  private:
    [[noreturn]] static void unused() { throw std::logic_error("no store in this test"); }
};

class JobStoreContract : public ::testing::TestWithParam<StoreFactory> {
  protected:
    std::unique_ptr<StoreBacking> backing_ = GetParam().make();
    std::unique_ptr<JobStore> store_ =
        backing_ ? backing_->open() : std::make_unique<UnusedStore>();
    JobStore& store = *store_;

    static Job make_job(const std::string& session) {
        Job j;
        j.id = random_id();
        j.session_id = session;
        j.model = "m";
        j.created_at = now_ms();
        return j;
    }
    static std::vector<std::string> ids(const std::vector<Job>& jobs) {
        std::vector<std::string> out;
        for (const Job& j : jobs)
            out.push_back(j.id);
        return out;
    }
};

// Names the implementation in failure messages (gtest would print the struct's bytes).
inline void PrintTo(const StoreFactory& factory, std::ostream* out) {
    *out << factory.name;
}

inline std::string store_factory_name(const ::testing::TestParamInfo<StoreFactory>& param) {
    return param.param.name;
}

TEST_P(JobStoreContract, JobsAreScopedBySession) {
    const std::string a = random_id(), b = random_id();
    store.create_session(Session{a, sha256_hex("ta"), now_ms(), now_ms() + 1000, false});
    Job job = make_job(a);
    store.insert_job(job);
    EXPECT_TRUE(store.find_job(a, job.id));
    EXPECT_FALSE(store.find_job(b, job.id));
    EXPECT_FALSE(store.delete_job(b, job.id));
    Job foreign = job;
    foreign.session_id = b;
    foreign.status = JobStatus::CANCELLED;
    EXPECT_FALSE(store.update_job(foreign));
    EXPECT_EQ(store.find_job(a, job.id)->status, JobStatus::QUEUED);
    Job keyed = make_job(a);
    keyed.idempotency_key = "k";
    store.insert_job(keyed);
    EXPECT_EQ(store.find_job_by_idempotency_key(a, "k")->id, keyed.id);
    EXPECT_FALSE(store.find_job_by_idempotency_key(b, "k"));
    EXPECT_FALSE(store.find_job_by_idempotency_key(a, "other"));
}

TEST_P(JobStoreContract, InsertUnlessKeyHeldAnswersWithTheHolder) {
    const std::string a = random_id(), b = random_id();
    for (const std::string& s : {a, b})
        store.create_session(Session{s, sha256_hex(s), now_ms(), now_ms() + 1000, false});
    Job first = make_job(a);
    first.idempotency_key = "k";
    EXPECT_FALSE(store.insert_job_unless_key_held(first));
    Job second = make_job(a);
    second.idempotency_key = "k";
    const auto holder = store.insert_job_unless_key_held(second);
    ASSERT_TRUE(holder);
    EXPECT_EQ(holder->id, first.id);
    EXPECT_EQ(holder->seq, first.seq);
    EXPECT_FALSE(store.find_job(a, second.id)) << "a second job was stored under a held key";
    // Keys are per session; jobs without a key are always inserted.
    Job other_session = make_job(b);
    other_session.idempotency_key = "k";
    EXPECT_FALSE(store.insert_job_unless_key_held(other_session));
    Job unkeyed = make_job(a), unkeyed_too = make_job(a);
    EXPECT_FALSE(store.insert_job_unless_key_held(unkeyed));
    EXPECT_FALSE(store.insert_job_unless_key_held(unkeyed_too));
    EXPECT_EQ(store.list_jobs(a, JobQuery{}).size(), 3u);
    // Once the holder is deleted the key is free again.
    ASSERT_TRUE(store.delete_job(a, first.id));
    EXPECT_FALSE(store.insert_job_unless_key_held(second));
    EXPECT_EQ(store.find_job_by_idempotency_key(a, "k")->id, second.id);
}

TEST_P(JobStoreContract, EveryFieldSurvivesUpdateAndReopen) {
    const std::string s = random_id();
    Job job = make_job(s);
    job.task = TaskKind::GENERATE;
    job.params_json = R"({"prompt":"bag","seed":7})";
    job.priority = Priority::HIGH;
    job.retry_of = random_id();
    job.idempotency_key = std::string("key \xff", 5);
    job.request_hash = sha256_hex("request");
    job.input_width = 451;
    job.input_height = 300;
    store.insert_job(job);
    job.status = JobStatus::SUCCEEDED;
    job.started_at = job.created_at + 5;
    job.finished_at = job.created_at + 9;
    job.attempts = 2;
    job.tile = 128;
    job.progress_done = 4;
    job.progress_total = 4;
    job.error = JobError{"x", "y"};
    job.outputs = {JobOutput{0, 8, 4, "image/png", "e0"}, JobOutput{1, 2, 2, "image/png", "e1"}};
    ASSERT_TRUE(store.update_job(job));
    store_.reset();
    store_ = backing_->open();
    const auto read = store_->find_job(s, job.id);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->seq, job.seq);
    EXPECT_EQ(read->update_seq, job.update_seq);
    EXPECT_EQ(read->model, "m");
    EXPECT_EQ(read->task, TaskKind::GENERATE);
    EXPECT_EQ(read->params_json, job.params_json);
    EXPECT_EQ(read->priority, Priority::HIGH);
    EXPECT_EQ(read->status, JobStatus::SUCCEEDED);
    EXPECT_EQ(read->created_at, job.created_at);
    EXPECT_EQ(read->started_at, job.started_at);
    EXPECT_EQ(read->finished_at, job.finished_at);
    EXPECT_EQ(read->attempts, 2);
    EXPECT_EQ(read->tile, 128);
    EXPECT_EQ(read->progress_done, 4);
    EXPECT_EQ(read->progress_total, 4);
    ASSERT_TRUE(read->error);
    EXPECT_EQ(read->error->code, "x");
    EXPECT_EQ(read->error->message, "y");
    EXPECT_EQ(read->retry_of, job.retry_of);
    EXPECT_EQ(read->idempotency_key, job.idempotency_key);
    EXPECT_EQ(read->request_hash, job.request_hash);
    EXPECT_EQ(read->input_width, 451);
    EXPECT_EQ(read->input_height, 300);
    ASSERT_EQ(read->outputs.size(), 2u);
    EXPECT_EQ(read->outputs[1].index, 1);
    EXPECT_EQ(read->outputs[0].width, 8);
    EXPECT_EQ(read->outputs[0].height, 4);
    EXPECT_EQ(read->outputs[1].digest, "e1");
    EXPECT_EQ(store_->find_job_by_idempotency_key(s, job.idempotency_key)->id, job.id);
    // Clearing the error and outputs is written too.
    Job again = *read;
    again.error.reset();
    again.outputs.clear();
    ASSERT_TRUE(store_->update_job(again));
    EXPECT_FALSE(store_->find_job(s, job.id)->error);
    EXPECT_TRUE(store_->find_job(s, job.id)->outputs.empty());
}

TEST_P(JobStoreContract, SequencesIncreaseAcrossInsertsAndUpdates) {
    const std::string s = random_id();
    EXPECT_EQ(store.last_update_seq(), 0);
    Job a = make_job(s), b = make_job(s);
    store.insert_job(a);
    store.insert_job(b);
    EXPECT_GT(a.seq, 0);
    EXPECT_GT(b.seq, a.seq);
    EXPECT_GT(b.update_seq, a.update_seq);
    const int64_t before = b.update_seq;
    a.status = JobStatus::RUNNING;
    ASSERT_TRUE(store.update_job(a));
    EXPECT_GT(a.update_seq, before);
    EXPECT_EQ(store.last_update_seq(), a.update_seq);
    EXPECT_EQ(store.find_job(s, a.id)->update_seq, a.update_seq);
    EXPECT_EQ(store.find_job(s, a.id)->seq, a.seq);  // the submission order stays
}

TEST_P(JobStoreContract, ListNewestFirstWithCursorStatusAndUpdatedSince) {
    const std::string s = random_id(), other = random_id();
    std::vector<Job> jobs;
    for (int i = 0; i < 5; ++i) {
        jobs.push_back(make_job(s));
        store.insert_job(jobs.back());
        Job noise = make_job(other);
        store.insert_job(noise);
    }
    JobQuery q;
    q.limit = 2;
    auto page = store.list_jobs(s, q);
    ASSERT_EQ(page.size(), 2u);
    EXPECT_EQ(page[0].id, jobs[4].id);
    EXPECT_EQ(page[1].id, jobs[3].id);
    q.before_seq = page[1].seq;
    page = store.list_jobs(s, q);
    ASSERT_EQ(page.size(), 2u);
    EXPECT_EQ(page[0].id, jobs[2].id);
    q.before_seq = page[1].seq;
    q.limit = 10;
    EXPECT_EQ(ids(store.list_jobs(s, q)), (std::vector<std::string>{jobs[0].id}));

    const int64_t mark = store.last_update_seq();
    jobs[3].status = JobStatus::FAILED;
    store.update_job(jobs[3]);
    jobs[1].status = JobStatus::FAILED;
    jobs[1].outputs = {JobOutput{0, 2, 2, "image/png", "d"}};
    store.update_job(jobs[1]);
    JobQuery since;
    since.updated_since = mark;
    EXPECT_EQ(ids(store.list_jobs(s, since)), (std::vector<std::string>{jobs[3].id, jobs[1].id}));
    since.oldest_change_first = true;
    const auto changes = store.list_jobs(s, since);
    EXPECT_EQ(ids(changes), (std::vector<std::string>{jobs[3].id, jobs[1].id}));
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[1].outputs.size(), 1u);  // listed jobs carry their outputs
    since.limit = 1;
    EXPECT_EQ(ids(store.list_jobs(s, since)), (std::vector<std::string>{jobs[3].id}));

    JobQuery failed;
    failed.status = JobStatus::FAILED;
    EXPECT_EQ(ids(store.list_jobs(s, failed)), (std::vector<std::string>{jobs[3].id, jobs[1].id}));
    failed.limit = 1;
    failed.before_seq = jobs[3].seq;
    EXPECT_EQ(ids(store.list_jobs(s, failed)), (std::vector<std::string>{jobs[1].id}));
    JobQuery queued;
    queued.status = JobStatus::QUEUED;
    EXPECT_EQ(store.list_jobs(s, queued).size(), 3u);
    EXPECT_TRUE(store.list_jobs(random_id(), JobQuery{}).empty());
}

TEST_P(JobStoreContract, DeletedJobsAreGoneEverywhere) {
    const std::string s = random_id();
    Job job = make_job(s);
    job.idempotency_key = "once";
    store.insert_job(job);
    EXPECT_TRUE(store.delete_job(s, job.id));
    EXPECT_FALSE(store.delete_job(s, job.id));
    EXPECT_FALSE(store.find_job(s, job.id));
    EXPECT_FALSE(store.find_job_by_idempotency_key(s, "once"));
    job.status = JobStatus::CANCELLED;
    EXPECT_FALSE(store.update_job(job));  // deleted meanwhile
    EXPECT_TRUE(store.list_jobs(s, JobQuery{}).empty());
    EXPECT_TRUE(store.unfinished_jobs().empty());
    EXPECT_EQ(store.count_by_status()[JobStatus::QUEUED], 0);
}

TEST_P(JobStoreContract, SessionsPauseTouchExpireAndDelete) {
    const int64_t now = now_ms();
    const std::string s = random_id(), old = random_id();
    store.create_session(Session{s, "h", now, now + 60000, false, 3600000});
    store.create_session(Session{old, "h2", now - 9000, now - 1000, false});
    EXPECT_FALSE(store.find_session(random_id()));
    auto found = store.find_session(s);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->token_hash, "h");
    EXPECT_EQ(found->created_at, now);
    EXPECT_EQ(found->idle_ttl_ms, 3600000);
    EXPECT_FALSE(found->paused);
    store.set_session_paused(s, true);
    EXPECT_TRUE(store.find_session(s)->paused);
    store.set_session_paused(s, false);
    EXPECT_FALSE(store.find_session(s)->paused);

    // touch moves expires_at forward only, and never revives an expired session.
    EXPECT_TRUE(store.touch_session(s, now, now + 120000));
    EXPECT_EQ(store.find_session(s)->expires_at, now + 120000);
    EXPECT_FALSE(store.touch_session(s, now, now + 90000));
    EXPECT_EQ(store.find_session(s)->expires_at, now + 120000);
    EXPECT_FALSE(store.touch_session(old, now, now + 120000));
    EXPECT_FALSE(store.touch_session(random_id(), now, now + 120000));
    EXPECT_EQ(store.expired_sessions(now), (std::vector<std::string>{old}));

    Job job = make_job(s);
    job.idempotency_key = "k";
    store.insert_job(job);
    store.delete_session(s);
    EXPECT_FALSE(store.find_session(s));
    EXPECT_FALSE(store.find_job(s, job.id));
    EXPECT_FALSE(store.find_job_by_idempotency_key(s, "k"));
    EXPECT_TRUE(store.unfinished_jobs().empty());
    store.delete_session(old);
    EXPECT_TRUE(store.expired_sessions(now + 1000000).empty());
}

TEST_P(JobStoreContract, RetentionCountsAndRecovery) {
    const std::string a = random_id(), b = random_id();
    std::vector<Job> jobs;
    for (const std::string& s : {a, b, a, b, a}) {
        jobs.push_back(make_job(s));
        store.insert_job(jobs.back());
    }
    jobs[0].status = JobStatus::SUCCEEDED;
    jobs[0].finished_at = 1000;
    jobs[1].status = JobStatus::FAILED;
    jobs[1].finished_at = 2000;
    jobs[2].status = JobStatus::RUNNING;
    jobs[2].started_at = 1500;
    for (int i : {0, 1, 2})
        ASSERT_TRUE(store.update_job(jobs[static_cast<size_t>(i)]));

    auto old = store.finished_before(1500);
    EXPECT_EQ(old, (std::vector<std::pair<std::string, std::string>>{{a, jobs[0].id}}));
    old = store.finished_before(3000);
    std::sort(old.begin(), old.end());
    std::vector<std::pair<std::string, std::string>> want{{a, jobs[0].id}, {b, jobs[1].id}};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(old, want);

    auto counts = store.count_by_status();
    EXPECT_EQ(counts[JobStatus::SUCCEEDED], 1);
    EXPECT_EQ(counts[JobStatus::FAILED], 1);
    EXPECT_EQ(counts[JobStatus::RUNNING], 1);
    EXPECT_EQ(counts[JobStatus::QUEUED], 2);
    EXPECT_EQ(counts[JobStatus::CANCELLED], 0);

    // Queued and running jobs of every session, in submission order.
    EXPECT_EQ(ids(store.unfinished_jobs()),
              (std::vector<std::string>{jobs[2].id, jobs[3].id, jobs[4].id}));
    store.delete_job(b, jobs[3].id);
    EXPECT_EQ(ids(store.unfinished_jobs()), (std::vector<std::string>{jobs[2].id, jobs[4].id}));
    EXPECT_EQ(store.count_by_status()[JobStatus::QUEUED], 1);
}

}  // namespace kiln::scheduler
