// RedisJobQueue: the JobQueue contract, and what only a shared queue must do: queue objects
// on one address and prefix (one per node) are one queue, also under concurrent pops.
#include <gtest/gtest.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "scheduler/fair_queue.h"
#include "scheduler/redis/redis_client.h"
#include "scheduler/redis/redis_job_queue.h"
#include "tests/redis/redis_server.h"
#include "tests/scheduler/job_queue_contract.h"

namespace kiln::scheduler {
namespace {

std::unique_ptr<JobQueue> make_redis_queue() {
    test::skip_unless_redis_available();
    if (!test::RedisServer::available())
        return nullptr;
    return std::make_unique<RedisJobQueue>(test::shared_redis_server().address(),
                                           test::fresh_key_prefix());
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

    std::unique_ptr<RedisJobQueue> node() const {
        return std::make_unique<RedisJobQueue>(address_, prefix_);
    }

    RedisAddress address_;
    std::string prefix_;
};

bool strictly_increasing(const std::vector<uint64_t>& ops) {
    return std::adjacent_find(ops.begin(), ops.end(), std::greater_equal<>()) == ops.end();
}

TEST_F(SharedRedisQueue, NodesOnOnePrefixAreOneQueue) {
    const auto a = node();
    const auto b = node();
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
    const auto feeder = node();
    for (int s = 0; s < sessions; ++s) {
        for (int j = 0; j < per_session; ++j) {
            const std::string session = name("s", s);
            const std::string tag = session + "-";
            feeder->push(session, name(tag.c_str(), j), Priority::NORMAL);
        }
    }

    std::vector<std::vector<QueuedJob>> popped(nodes);
    std::vector<std::string> errors(nodes);
    std::vector<std::thread> threads;
    for (int t = 0; t < nodes; ++t) {
        threads.emplace_back([this, t, &popped, &errors] {
            try {
                RedisJobQueue queue(address_, prefix_);
                while (auto job = queue.pop())
                    popped[t].push_back(*job);
            } catch (const std::exception& e) {
                errors[t] = e.what();
            }
        });
    }
    for (std::thread& thread : threads)
        thread.join();
    for (const std::string& error : errors)
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
    RedisJobQueue actual(address_, prefix_);
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

TEST_F(SharedRedisQueue, PrefixesKeepQueuesApartAndADrainedQueueLeavesOnlyItsCounters) {
    RedisJobQueue mine(address_, prefix_);
    RedisJobQueue other(address_, test::fresh_key_prefix());
    mine.push("s", "mine", Priority::NORMAL);
    other.push("s", "other", Priority::NORMAL);
    EXPECT_EQ(mine.pop()->job_id, "mine");
    EXPECT_FALSE(mine.pop());
    EXPECT_EQ(other.size(), 1u);

    RedisConnection redis(address_);
    const RedisReply keys = redis.command({"KEYS", prefix_ + ":*"});
    std::vector<std::string> names;
    for (const RedisReply& key : keys.elements)
        names.push_back(key.as_string());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{prefix_ + ":op", prefix_ + ":size"}));
}

}  // namespace
}  // namespace kiln::scheduler
