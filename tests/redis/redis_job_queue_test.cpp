// RedisJobQueue: the JobQueue contract, and what only a shared queue must do: queue objects
// on one address and prefix (one per node) are one queue, also under concurrent pops, and a
// job claimed by a node that dies comes back to another after the visibility timeout.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "scheduler/fair_queue.h"
#include "scheduler/redis/redis_client.h"
#include "scheduler/redis/redis_job_queue.h"
#include "tests/redis/in_threads.h"
#include "tests/redis/redis_server.h"
#include "tests/scheduler/job_queue_contract.h"

namespace kiln::scheduler {
namespace {

std::unique_ptr<JobQueue> make_redis_queue() {
    test::skip_unless_redis_available();
    if (!test::RedisServer::available())
        return nullptr;
    return std::make_unique<RedisJobQueue>(test::shared_redis_server().address(),
                                           test::fresh_key_prefix(), "node");
}

INSTANTIATE_TEST_SUITE_P(Queues,
                         JobQueueContract,
                         ::testing::Values(QueueFactory{"Redis", make_redis_queue}),
                         factory_name);

class SharedRedisQueue : public ::testing::Test {
  protected:
    void SetUp() override {
        test::skip_unless_redis_available();
        if (!test::RedisServer::available())
            return;
        address_ = test::shared_redis_server().address();
        prefix_ = test::fresh_key_prefix();
    }

    std::unique_ptr<RedisJobQueue> node(
        const std::string& id,
        std::chrono::milliseconds timeout = std::chrono::seconds(60)) const {
        return std::make_unique<RedisJobQueue>(address_, prefix_, id, timeout);
    }

    RedisAddress address_;
    std::string prefix_;
};

bool strictly_increasing(const std::vector<uint64_t>& ops) {
    return std::adjacent_find(ops.begin(), ops.end(), std::greater_equal<>()) == ops.end();
}

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Short, so that the tests of expired claims take well under a second each.
constexpr milliseconds claim_timeout(300);

// Pops until a job comes or `within` has passed: claims expire on the server's clock, so the
// tests poll rather than sleep for an exact time.
std::optional<QueuedJob> pop_within(JobQueue& queue, milliseconds within) {
    const auto give_up = Clock::now() + within;
    while (true) {
        if (auto job = queue.pop())
            return job;
        if (Clock::now() >= give_up)
            return std::nullopt;
        std::this_thread::sleep_for(milliseconds(10));
    }
}

TEST_F(SharedRedisQueue, NodesOnOnePrefixAreOneQueue) {
    const auto a = node("a");
    const auto b = node("b");
    std::vector<uint64_t> ops;
    ops.push_back(a->push("s1", "s1-0", Priority::NORMAL));
    ops.push_back(b->push("s1", "s1-1", Priority::NORMAL));
    ops.push_back(a->push("s2", "s2-0", Priority::NORMAL));
    ops.push_back(b->push("s2", "s2-1", Priority::NORMAL));
    EXPECT_EQ(b->size(), 4u);
    EXPECT_EQ(a->session_size("s1"), 2u);
    EXPECT_EQ(b->position("s2", "s2-0"), 1);

    std::vector<std::string> order;
    for (JobQueue* from : {b.get(), a.get(), b.get(), a.get()}) {
        const auto job = from->pop();
        ASSERT_TRUE(job);
        order.push_back(job->job_id);
        ops.push_back(job->queue_op);
    }
    EXPECT_EQ(order, (std::vector<std::string>{"s1-0", "s2-0", "s1-1", "s2-1"}));
    EXPECT_TRUE(strictly_increasing(ops));
    EXPECT_FALSE(a->pop());
    EXPECT_EQ(b->size(), 0u);

    a->set_paused("s1", true);
    EXPECT_TRUE(b->is_paused("s1"));
    b->push("s1", "s1-2", Priority::NORMAL);
    EXPECT_FALSE(a->pop());
    b->set_paused("s1", false);
    EXPECT_EQ(a->pop()->job_id, "s1-2");
}

TEST_F(SharedRedisQueue, ConcurrentPopsFromFourNodesTakeEveryJobOnceInRoundRobin) {
    constexpr int sessions = 5;
    constexpr int per_session = 80;
    constexpr int nodes = 4;
    const auto feeder = node("feeder");
    for (int s = 0; s < sessions; ++s) {
        for (int j = 0; j < per_session; ++j) {
            const std::string session = name("s", s);
            const std::string tag = session + "-";
            feeder->push(session, name(tag.c_str(), j), Priority::NORMAL);
        }
    }

    std::vector<std::vector<QueuedJob>> popped(nodes);
    for (const std::string& error : test::run_in_threads(nodes, [&](int t) {
             RedisJobQueue queue(address_, prefix_, name("n", t));
             while (auto job = queue.pop())
                 popped[t].push_back(*job);
         }))
        EXPECT_EQ(error, "");

    std::vector<QueuedJob> all;
    for (const auto& jobs : popped)
        all.insert(all.end(), jobs.begin(), jobs.end());
    ASSERT_EQ(all.size(), static_cast<size_t>(sessions * per_session));
    std::sort(all.begin(), all.end(),
              [](const QueuedJob& x, const QueuedJob& y) { return x.queue_op < y.queue_op; });
    std::vector<uint64_t> ops;
    for (const QueuedJob& job : all)
        ops.push_back(job.queue_op);
    EXPECT_TRUE(strictly_increasing(ops));
    // In operation order the pops are exactly the one-node round robin: no job twice, none
    // lost, each session FIFO.
    for (size_t i = 0; i < all.size(); ++i) {
        const std::string session = name("s", static_cast<int>(i % sessions));
        const std::string tag = session + "-";
        EXPECT_EQ(all[i].session_id, session) << i;
        EXPECT_EQ(all[i].job_id, name(tag.c_str(), static_cast<int>(i / sessions))) << i;
    }
    EXPECT_EQ(feeder->size(), 0u);
}

// Beyond the contract's cases: the same random operations on FairQueue and RedisJobQueue give
// the same answers, operation numbers included.
TEST_F(SharedRedisQueue, MatchesFairQueueOnRandomOperations) {
    FairQueue expected;
    RedisJobQueue actual(address_, prefix_, "node");
    std::mt19937 random(20261203);
    const auto pick = [&random](int n) {
        return static_cast<int>(random() % static_cast<unsigned>(n));
    };
    std::vector<std::pair<std::string, std::string>> pushed;  // (session, job), ever pushed
    for (int step = 0; step < 3000; ++step) {
        SCOPED_TRACE(step);
        const std::string session = name("s", pick(6));
        const int action = pick(100);
        if (action < 40 || pushed.empty()) {
            const std::string job = name("j", step);
            const auto priority = static_cast<Priority>(pick(3));
            ASSERT_EQ(actual.push(session, job, priority), expected.push(session, job, priority));
            pushed.emplace_back(session, job);
        } else if (action < 70) {
            const std::optional<QueuedJob> want = expected.pop();
            const std::optional<QueuedJob> got = actual.pop();
            ASSERT_EQ(got.has_value(), want.has_value());
            if (want) {
                EXPECT_EQ(got->session_id, want->session_id);
                EXPECT_EQ(got->job_id, want->job_id);
                EXPECT_EQ(got->queue_op, want->queue_op);
                EXPECT_EQ(got->delivery, want->delivery);
            }
        } else if (action < 78) {
            const auto& [owner, job] =
                pushed[static_cast<size_t>(pick(static_cast<int>(pushed.size())))];
            const std::string& in = pick(4) == 0 ? session : owner;  // sometimes another session
            ASSERT_EQ(actual.remove(in, job), expected.remove(in, job));
        } else if (action < 92) {
            const auto& [owner, job] =
                pushed[static_cast<size_t>(pick(static_cast<int>(pushed.size())))];
            ASSERT_EQ(actual.position(owner, job), expected.position(owner, job));
        } else if (action < 98) {
            const bool paused = pick(2) == 0;
            actual.set_paused(session, paused);
            expected.set_paused(session, paused);
        } else {
            ASSERT_EQ(actual.clear_session(session), expected.clear_session(session));
        }
        ASSERT_EQ(actual.size(), expected.size());
        ASSERT_EQ(actual.session_size(session), expected.session_size(session));
        ASSERT_EQ(actual.is_paused(session), expected.is_paused(session));
    }
}

TEST_F(SharedRedisQueue, PrefixesKeepQueuesApartAndADrainedAckedQueueLeavesOnlyItsCounters) {
    RedisJobQueue mine(address_, prefix_, "node");
    RedisJobQueue other(address_, test::fresh_key_prefix(), "node");
    mine.push("s", "mine", Priority::NORMAL);
    other.push("s", "other", Priority::NORMAL);
    const auto job = mine.pop();
    ASSERT_TRUE(job);
    EXPECT_EQ(job->job_id, "mine");
    EXPECT_FALSE(mine.pop());
    mine.ack(*job);
    EXPECT_EQ(other.size(), 1u);

    RedisConnection redis(address_);
    const RedisReply keys = redis.command({"KEYS", prefix_ + ":*"});
    std::vector<std::string> names;
    for (const RedisReply& key : keys.elements)
        names.push_back(key.as_string());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{prefix_ + ":op", prefix_ + ":size"}));
}

// A node killed with -9 holds its claim until the timeout: others get the rest of the queue
// first, then the dead node's job, once.
TEST_F(SharedRedisQueue, ADeadNodesJobComesBackToAnotherNodeAfterTheTimeout) {
    const auto b = node("b", claim_timeout);
    b->push("s", "s0", Priority::NORMAL);
    b->push("t", "t0", Priority::NORMAL);
    b->push("s", "s1", Priority::NORMAL);
    const auto before_a = Clock::now();
    {
        const auto a = node("a", claim_timeout);
        const auto job = a->pop();
        ASSERT_TRUE(job);
        EXPECT_EQ(job->job_id, "s0");
        EXPECT_EQ(job->delivery, 1);
    }  // a dies without ack

    std::vector<QueuedJob> got;
    for (int i = 0; i < 3; ++i) {
        if (auto job = b->pop())
            got.push_back(*job);
    }
    // The claim cannot have expired yet when b's pops all ran within the timeout of a's pop.
    if (Clock::now() - before_a < claim_timeout) {
        ASSERT_EQ(got.size(), 2u);
        EXPECT_EQ(got[0].job_id, "t0");
        EXPECT_EQ(got[1].job_id, "s1");
    }
    while (got.size() < 3) {
        const auto job = pop_within(*b, std::chrono::seconds(5));
        ASSERT_TRUE(job) << "the dead node's job never came back";
        got.push_back(*job);
    }
    std::vector<uint64_t> ops;
    std::set<std::string> ids;
    for (const QueuedJob& job : got) {
        EXPECT_EQ(job.delivery, job.job_id == "s0" ? 2 : 1) << job.job_id;
        ids.insert(job.job_id);
        ops.push_back(job.queue_op);
        b->ack(job);
    }
    EXPECT_EQ(ids, (std::set<std::string>{"s0", "s1", "t0"}));
    EXPECT_TRUE(strictly_increasing(ops));

    std::this_thread::sleep_for(2 * claim_timeout);
    EXPECT_FALSE(b->pop());
}

TEST_F(SharedRedisQueue, ARenewedClaimIsNotTakenOverAndAnAckedOneNeverComesBack) {
    constexpr milliseconds timeout(600);  // renewed every 100 ms: a wide margin on a busy host
    const auto a = node("a", timeout);
    const auto b = node("b", timeout);
    a->push("s", "s0", Priority::NORMAL);
    const auto job = a->pop();
    ASSERT_TRUE(job);
    const auto until = Clock::now() + 3 * timeout;
    while (Clock::now() < until) {
        EXPECT_TRUE(a->renew(*job));
        EXPECT_FALSE(b->pop());
        std::this_thread::sleep_for(milliseconds(100));
    }
    a->ack(*job);
    EXPECT_FALSE(a->renew(*job));
    std::this_thread::sleep_for(timeout + milliseconds(100));
    EXPECT_FALSE(b->pop());
}

TEST_F(SharedRedisQueue, LateRenewAndAckOfATakenOverClaimLeaveTheNewHolderAlone) {
    const auto a = node("a", claim_timeout);
    const auto b = node("b", claim_timeout);
    a->push("s", "s0", Priority::NORMAL);
    const auto lost = a->pop();  // a stalls past the timeout
    ASSERT_TRUE(lost);
    const auto taken = pop_within(*b, std::chrono::seconds(5));
    ASSERT_TRUE(taken);
    EXPECT_EQ(taken->job_id, "s0");
    EXPECT_EQ(taken->delivery, 2);
    EXPECT_GT(taken->queue_op, lost->queue_op);

    EXPECT_FALSE(a->renew(*lost));
    a->ack(*lost);
    EXPECT_TRUE(b->renew(*taken));  // b's claim survived a's late ack
    b->ack(*taken);
    EXPECT_FALSE(b->renew(*taken));
    std::this_thread::sleep_for(2 * claim_timeout);
    EXPECT_FALSE(a->pop());
}

TEST_F(SharedRedisQueue, WhenOneOfFourNodesDiesTheOthersAckEveryJobOnce) {
    constexpr int sessions = 5;
    constexpr int jobs = 100;
    constexpr int held = 10;
    constexpr int survivors = 3;
    constexpr milliseconds timeout(500);  // survivors ack at once: far within it
    const auto feeder = node("feeder");
    for (int j = 0; j < jobs; ++j)
        feeder->push(name("s", j % sessions), name("j", j), Priority::NORMAL);

    std::vector<uint64_t> ops;
    std::set<std::string> dead_jobs;
    {
        const auto dead = node("dead", timeout);
        for (int i = 0; i < held; ++i) {
            const auto job = dead->pop();
            ASSERT_TRUE(job);
            dead_jobs.insert(job->job_id);
            ops.push_back(job->queue_op);
        }
    }  // killed holding its claims

    std::atomic<int> acked{0};
    std::vector<std::vector<QueuedJob>> taken(survivors);
    for (const std::string& error : test::run_in_threads(survivors, [&](int t) {
             RedisJobQueue queue(address_, prefix_, name("n", t), timeout);
             const auto give_up = Clock::now() + std::chrono::seconds(20);
             while (acked.load() < jobs && Clock::now() < give_up) {
                 const auto job = queue.pop();
                 if (!job) {
                     std::this_thread::sleep_for(milliseconds(10));
                     continue;
                 }
                 taken[t].push_back(*job);
                 queue.ack(*job);
                 ++acked;
             }
         }))
        EXPECT_EQ(error, "");

    std::map<std::string, int> acks;
    for (const auto& jobs_of_node : taken) {
        std::vector<uint64_t> own;
        for (const QueuedJob& job : jobs_of_node) {
            ++acks[job.job_id];
            own.push_back(job.queue_op);
            ops.push_back(job.queue_op);
            EXPECT_EQ(job.delivery, dead_jobs.count(job.job_id) ? 2 : 1) << job.job_id;
        }
        EXPECT_TRUE(strictly_increasing(own));
    }
    EXPECT_EQ(acks.size(), static_cast<size_t>(jobs));
    for (const auto& [job, count] : acks)
        EXPECT_EQ(count, 1) << job;
    std::sort(ops.begin(), ops.end());
    EXPECT_TRUE(strictly_increasing(ops));  // one sequence: no number given twice

    EXPECT_EQ(feeder->size(), 0u);
    RedisConnection redis(address_);
    EXPECT_EQ(redis.command({"ZCARD", prefix_ + ":claims"}).as_integer(), 0);
}

// Pausing holds queued jobs; a job that was running when its node died is not queued.
TEST_F(SharedRedisQueue, AnExpiredClaimOfAPausedSessionIsStillHandedOut) {
    {
        const auto a = node("a", claim_timeout);
        a->push("s", "s0", Priority::NORMAL);
        a->push("s", "s1", Priority::NORMAL);
        ASSERT_EQ(a->pop()->job_id, "s0");
        a->set_paused("s", true);
    }  // a dies without ack
    const auto b = node("b", claim_timeout);
    const auto job = pop_within(*b, std::chrono::seconds(5));
    ASSERT_TRUE(job);
    EXPECT_EQ(job->job_id, "s0");
    EXPECT_EQ(job->delivery, 2);
    EXPECT_FALSE(b->pop());  // s1 stays held by the pause
    EXPECT_EQ(b->session_size("s"), 1u);
    b->ack(*job);
}

}  // namespace
}  // namespace kiln::scheduler
