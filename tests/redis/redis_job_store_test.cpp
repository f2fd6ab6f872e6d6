// RedisJobStore: the JobStore contract, and what only a shared store must do: store objects on
// one address and prefix (one per node) are one store, also under concurrent writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <exception>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "scheduler/ids.h"
#include "scheduler/redis/record_codec.h"
#include "scheduler/redis/redis_client.h"
#include "scheduler/redis/redis_job_store.h"
#include "tests/redis/in_threads.h"
#include "tests/redis/redis_server.h"
#include "tests/scheduler/job_store_contract.h"

namespace kiln::scheduler {
namespace {

// A key prefix on the shared server: a later open() sees what an earlier store wrote.
class RedisBacking final : public StoreBacking {
  public:
    std::unique_ptr<JobStore> open() override {
        return std::make_unique<RedisJobStore>(test::shared_redis_server().address(), prefix_);
    }

  private:
    const std::string prefix_ = test::fresh_key_prefix();
};

std::unique_ptr<StoreBacking> make_redis_backing() {
    test::skip_unless_redis_available();
    if (!test::RedisServer::available())
        return nullptr;
    return std::make_unique<RedisBacking>();
}

INSTANTIATE_TEST_SUITE_P(Stores,
                         JobStoreContract,
                         ::testing::Values(StoreFactory{"redis", make_redis_backing}),
                         store_factory_name);

Job new_job(const std::string& session) {
    Job j;
    j.id = random_id();
    j.session_id = session;
    j.model = std::string("m");
    j.created_at = now_ms();
    return j;
}

std::vector<std::string> ids(const std::vector<Job>& jobs) {
    std::vector<std::string> out;
    for (const Job& j : jobs)
        out.push_back(j.id);
    return out;
}

class SharedRedisStore : public ::testing::Test {
  protected:
    void SetUp() override {
        test::skip_unless_redis_available();
        if (!test::RedisServer::available())
            return;
        address_ = test::shared_redis_server().address();
        prefix_ = test::fresh_key_prefix();
    }

    std::unique_ptr<RedisJobStore> node() const {
        return std::make_unique<RedisJobStore>(address_, prefix_);
    }

    std::string key(const std::string& tail) const { return prefix_ + ":" + tail; }

    // Every key under the prefix, as SCAN finds them.
    std::set<std::string> keys() const {
        RedisConnection redis(address_);
        std::set<std::string> names;
        std::string cursor = "0";
        do {
            const RedisReply reply =
                redis.command({"SCAN", cursor, "MATCH", prefix_ + ":*", "COUNT", "1000"});
            cursor = reply.elements.at(0).as_string();
            for (const RedisReply& name : reply.elements.at(1).elements)
                names.insert(name.as_string());
        } while (cursor != "0");
        return names;
    }

    std::vector<std::string> members(const std::string& sorted_set) const {
        RedisConnection redis(address_);
        std::vector<std::string> out;
        for (const RedisReply& m : redis.command({"ZRANGE", sorted_set, "0", "-1"}).elements)
            out.push_back(m.as_string());
        return out;
    }

    RedisAddress address_;
    std::string prefix_;
};

TEST_F(SharedRedisStore, ConcurrentWritesFromTwoNodesGetUniqueSequenceNumbers) {
    constexpr int threads = 4;  // two per node
    constexpr int per_thread = 100;
    const auto a = node();
    const auto b = node();
    const std::vector<std::string> sessions = {random_id(), random_id(), random_id()};

    std::vector<std::vector<Job>> inserted(threads);
    std::vector<std::vector<Job>> updated(threads);
    for (const std::string& error : test::run_in_threads(threads, [&](int t) {
             JobStore& store = t % 2 == 0 ? *a : *b;
             for (int i = 0; i < per_thread; ++i) {
                 Job job = new_job(sessions[static_cast<size_t>(i) % sessions.size()]);
                 store.insert_job(job);
                 inserted[t].push_back(job);
             }
             for (size_t i = 0; i < inserted[t].size(); ++i) {
                 Job job = inserted[t][i];
                 if (i % 2 == 0) {
                     job.status = JobStatus::SUCCEEDED;
                     job.finished_at = now_ms();
                     job.outputs = {JobOutput{0, 2, 2, "image/png", job.id.substr(0, 8)}};
                 } else {
                     job.status = JobStatus::RUNNING;
                     job.started_at = now_ms();
                 }
                 if (!store.update_job(job))
                     throw std::runtime_error("update_job lost " + job.id);
                 updated[t].push_back(job);
             }
         }))
        ASSERT_EQ(error, "");

    std::set<int64_t> seqs;
    std::set<int64_t> update_seqs;
    std::vector<Job> running;
    for (int t = 0; t < threads; ++t) {
        for (const Job& job : inserted[t]) {
            seqs.insert(job.seq);
            update_seqs.insert(job.update_seq);
        }
        JobStore& other = t % 2 == 0 ? *b : *a;
        for (const Job& job : updated[t]) {
            update_seqs.insert(job.update_seq);
            const auto found = other.find_job(job.session_id, job.id);
            ASSERT_TRUE(found) << job.id;
            EXPECT_EQ(found->seq, job.seq);
            EXPECT_EQ(found->update_seq, job.update_seq);
            EXPECT_EQ(found->status, job.status);
            EXPECT_EQ(found->outputs.size(), job.outputs.size());
            if (job.status == JobStatus::RUNNING)
                running.push_back(job);
        }
    }
    constexpr size_t total = threads * per_thread;
    EXPECT_EQ(seqs.size(), total);
    EXPECT_EQ(update_seqs.size(), 2 * total);
    EXPECT_EQ(a->last_update_seq(), *update_seqs.rbegin());
    EXPECT_EQ(b->last_update_seq(), *update_seqs.rbegin());

    auto counts = b->count_by_status();
    EXPECT_EQ(counts[JobStatus::SUCCEEDED], static_cast<int64_t>(total / 2));
    EXPECT_EQ(counts[JobStatus::RUNNING], static_cast<int64_t>(total / 2));
    EXPECT_EQ(counts[JobStatus::QUEUED], 0);
    std::sort(running.begin(), running.end(),
              [](const Job& x, const Job& y) { return x.seq < y.seq; });
    EXPECT_EQ(ids(a->unfinished_jobs()), ids(running));
    EXPECT_EQ(ids(b->unfinished_jobs()), ids(running));

    JobQuery all;
    all.limit = static_cast<int>(total);
    size_t listed = 0;
    for (const std::string& session : sessions)
        listed += a->list_jobs(session, all).size();
    EXPECT_EQ(listed, total);
}

TEST_F(SharedRedisStore, AnUpdateOnOneNodeIsAChangeOnAnother) {
    const auto a = node();
    const auto b = node();
    const std::string s = random_id();
    Job job = new_job(s);
    Job untouched = new_job(s);
    a->insert_job(job);
    a->insert_job(untouched);
    const int64_t mark = b->last_update_seq();

    job.status = JobStatus::SUCCEEDED;
    job.finished_at = now_ms();
    job.outputs = {JobOutput{0, 8, 4, "image/png", "e0"}, JobOutput{1, 2, 2, "image/png", "e1"}};
    ASSERT_TRUE(a->update_job(job));

    JobQuery since;
    since.updated_since = mark;
    since.oldest_change_first = true;
    const auto changes = b->list_jobs(s, since);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].id, job.id);
    EXPECT_EQ(changes[0].status, JobStatus::SUCCEEDED);
    EXPECT_EQ(changes[0].update_seq, job.update_seq);
    ASSERT_EQ(changes[0].outputs.size(), 2u);
    EXPECT_EQ(changes[0].outputs[1].digest, "e1");
    since.updated_since = job.update_seq;
    EXPECT_TRUE(b->list_jobs(s, since).empty());
}

TEST_F(SharedRedisStore, DeletingASessionLeavesNoKeyOfIt) {
    const auto a = node();
    const auto b = node();
    const int64_t now = now_ms();
    const std::string gone = random_id(), kept = random_id();
    a->create_session(Session{gone, "h", now, now + 60000, false});
    a->create_session(Session{kept, "h", now, now + 60000, false});

    std::vector<Job> gone_jobs;
    for (const JobStatus status : {JobStatus::QUEUED, JobStatus::RUNNING, JobStatus::SUCCEEDED}) {
        Job job = new_job(gone);
        job.idempotency_key = std::string("k");
        a->insert_job(job);
        job.status = status;
        job.finished_at = status == JobStatus::SUCCEEDED ? now : 0;
        ASSERT_TRUE(a->update_job(job));
        gone_jobs.push_back(job);
    }
    Job queued = new_job(kept);
    queued.idempotency_key = std::string("k");
    a->insert_job(queued);
    Job done = new_job(kept);
    a->insert_job(done);
    done.status = JobStatus::FAILED;
    done.finished_at = now;
    ASSERT_TRUE(a->update_job(done));

    a->delete_session(gone);
    EXPECT_FALSE(b->find_session(gone));
    for (const Job& job : gone_jobs)
        EXPECT_FALSE(b->find_job(gone, job.id));
    EXPECT_FALSE(b->find_job_by_idempotency_key(gone, "k"));
    EXPECT_EQ(b->find_job_by_idempotency_key(kept, "k")->id, queued.id);
    EXPECT_TRUE(b->list_jobs(gone, JobQuery{}).empty());
    EXPECT_EQ(ids(b->unfinished_jobs()), (std::vector<std::string>{queued.id}));
    EXPECT_EQ(b->finished_before(now + 1),
              (std::vector<std::pair<std::string, std::string>>{{kept, done.id}}));
    EXPECT_EQ(b->count_by_status(),
              (std::map<JobStatus, int64_t>{{JobStatus::QUEUED, 1}, {JobStatus::FAILED, 1}}));
    EXPECT_EQ(b->expired_sessions(now + 1000000), (std::vector<std::string>{kept}));

    // Only the counters, the global sets and the kept session's keys remain.
    const std::string kept_job = "job:" + kept + ":";
    const std::set<std::string> want = {key("seq"),
                                        key("update_seq"),
                                        key("counts"),
                                        key("finished"),
                                        key("unfinished"),
                                        key("expiry"),
                                        key("session:" + kept),
                                        key(kept_job + queued.id),
                                        key(kept_job + done.id),
                                        key("jobs:" + kept),
                                        key("changes:" + kept),
                                        key("status:" + kept + ":queued"),
                                        key("status:" + kept + ":failed"),
                                        key("idem:" + kept + ":" + idempotency_key_hex("k"))};
    EXPECT_EQ(keys(), want);
    for (const std::string& set : {key("finished"), key("unfinished"), key("expiry")}) {
        for (const std::string& member : members(set))
            EXPECT_EQ(member.find(gone), std::string::npos) << set << " holds " << member;
    }
}

// Where the contract says nothing, as SqliteJobStore: an update writes only the job's state,
// and an idempotency key held by two jobs answers with the older one while it exists.
TEST_F(SharedRedisStore, UpdatesKeepWhatInsertWroteAndTheOldestKeyHolderAnswers) {
    const auto store = node();
    const std::string s = random_id();
    Job job = new_job(s);
    job.idempotency_key = std::string("k");
    store->insert_job(job);
    Job changed = job;
    changed.model = std::string("other");
    changed.task = TaskKind::GENERATE;
    changed.params_json = std::string(R"({"seed":1})");
    changed.priority = Priority::LOW;
    changed.idempotency_key = std::string("z");
    changed.status = JobStatus::RUNNING;
    changed.attempts = 1;
    ASSERT_TRUE(store->update_job(changed));
    const auto read = store->find_job(s, job.id);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->model, "m");
    EXPECT_EQ(read->task, TaskKind::UPSCALE);
    EXPECT_EQ(read->params_json, "{}");
    EXPECT_EQ(read->priority, Priority::NORMAL);
    EXPECT_EQ(read->idempotency_key, "k");
    EXPECT_EQ(read->status, JobStatus::RUNNING);
    EXPECT_EQ(read->attempts, 1);
    EXPECT_FALSE(store->find_job_by_idempotency_key(s, "z"));

    Job twin = new_job(s);
    twin.idempotency_key = std::string("k");
    store->insert_job(twin);
    EXPECT_EQ(store->find_job_by_idempotency_key(s, "k")->id, job.id);
    ASSERT_TRUE(store->delete_job(s, job.id));
    EXPECT_EQ(store->find_job_by_idempotency_key(s, "k")->id, twin.id);
}

// What a script sent again after a lost connection does (redis_job_store.h).
TEST_F(SharedRedisStore, ASecondInsertOfAStoredJobChangesNothing) {
    const auto store = node();
    const std::string s = random_id();
    Job job = new_job(s);
    store->insert_job(job);
    Job again = job;
    store->insert_job(again);
    EXPECT_EQ(again.seq, job.seq);
    EXPECT_EQ(again.update_seq, job.update_seq);
    EXPECT_EQ(store->last_update_seq(), job.update_seq);
    EXPECT_EQ(store->count_by_status()[JobStatus::QUEUED], 1);
    EXPECT_EQ(ids(store->list_jobs(s, JobQuery{})), (std::vector<std::string>{job.id}));
}

TEST_F(SharedRedisStore, ACorruptRecordIsBadFileNamingTheJob) {
    const auto store = node();
    const std::string s = random_id();
    Job job = new_job(s);
    Job fine = new_job(s);
    store->insert_job(job);
    store->insert_job(fine);
    RedisConnection redis(address_);
    redis.command({"HSET", key("job:" + s + ":" + job.id), "record", "garbage"});

    const auto expect_bad_file = [&](const auto& call) {
        try {
            call();
            ADD_FAILURE() << "a corrupt record was read";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), core::ErrorCode::BAD_FILE);
            const std::string message = e.what();
            EXPECT_NE(message.find(job.id), std::string::npos) << message;
            EXPECT_NE(message.find("job record is not valid"), std::string::npos) << message;
        }
    };
    expect_bad_file([&] { store->find_job(s, job.id); });
    expect_bad_file([&] { store->list_jobs(s, JobQuery{}); });
    expect_bad_file([&] { store->unfinished_jobs(); });
    expect_bad_file([&] { store->update_job(job); });
    EXPECT_EQ(store->find_job(s, fine.id)->id, fine.id);
    EXPECT_TRUE(store->delete_job(s, job.id));  // a corrupt job can still be removed
    EXPECT_EQ(ids(store->list_jobs(s, JobQuery{})), (std::vector<std::string>{fine.id}));
}

}  // namespace
}  // namespace kiln::scheduler
