// The contract every JobQueue keeps (scheduler/job_queue.h). Each test binary includes this
// once and instantiates the suite with its implementations' factories:
//   INSTANTIATE_TEST_SUITE_P(Queues, JobQueueContract, ::testing::Values(QueueFactory{...}),
//                            factory_name);
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "scheduler/fair_queue.h"
#include "scheduler/job_queue.h"

namespace kiln::scheduler {
namespace {

struct QueueFactory {
    const char* name;
    // A fresh, empty queue; none when the implementation cannot run here, after recording a
    // skip or a failure (gtest then runs no test body).
    std::function<std::unique_ptr<JobQueue>()> make;
};

class JobQueueContract : public ::testing::TestWithParam<QueueFactory> {
  protected:
    std::unique_ptr<JobQueue> queue_ = GetParam().make();
    FairQueue unused_;  // bound to q only when make() returned none: no test body runs then
    JobQueue& q = queue_ ? *queue_ : unused_;
};

// Names the implementation in failure messages (gtest would print the struct's bytes).
void PrintTo(const QueueFactory& factory, std::ostream* out) {
    *out << factory.name;
}

std::string factory_name(const ::testing::TestParamInfo<QueueFactory>& param) {
    return std::string(param.param.name);
}

std::string name(const char* prefix, int i) {
    std::string s = prefix;
    s += std::to_string(i);
    return s;
}

std::vector<std::string> drain(JobQueue& q) {
    std::vector<std::string> out;
    while (auto job = q.pop())
        out.push_back(job->job_id);
    return out;
}

TEST_P(JobQueueContract, FifoWithinSessionPriorityFirst) {
    q.push("a", "a1", Priority::NORMAL);
    q.push("a", "a2", Priority::LOW);
    q.push("a", "a3", Priority::HIGH);
    q.push("a", "a4", Priority::NORMAL);
    EXPECT_EQ(drain(q), (std::vector<std::string>{"a3", "a1", "a4", "a2"}));
    EXPECT_EQ(q.size(), 0u);
}

TEST_P(JobQueueContract, RoundRobinAcrossSessions) {
    for (int i = 0; i < 4; ++i)
        q.push("a", name("a", i), Priority::NORMAL);
    q.push("b", "b0", Priority::NORMAL);
    q.push("c", "c0", Priority::LOW);
    EXPECT_EQ(drain(q), (std::vector<std::string>{"a0", "b0", "c0", "a1", "a2", "a3"}));
}

TEST_P(JobQueueContract, LateSessionWaitsAtMostOneJob) {
    for (int i = 0; i < 30; ++i)
        q.push("a", name("a", i), Priority::NORMAL);
    ASSERT_EQ(q.pop()->job_id, "a0");  // running
    q.push("b", "b0", Priority::NORMAL);
    EXPECT_LE(*q.position("b", "b0"), 1);
    const auto order = drain(q);
    const auto b = std::find(order.begin(), order.end(), "b0") - order.begin();
    EXPECT_LE(b, 1);
}

TEST_P(JobQueueContract, PositionMatchesPopOrder) {
    q.push("a", "a0", Priority::NORMAL);
    q.push("a", "a1", Priority::NORMAL);
    q.push("b", "b0", Priority::NORMAL);
    q.push("a", "a2", Priority::HIGH);
    q.push("c", "c0", Priority::NORMAL);
    q.push("c", "c1", Priority::NORMAL);
    std::map<std::string, int> positions;
    for (const char* id : {"a0", "a1", "a2"})
        positions[id] = *q.position("a", id);
    positions["b0"] = *q.position("b", "b0");
    positions["c0"] = *q.position("c", "c0");
    positions["c1"] = *q.position("c", "c1");
    const auto order = drain(q);
    for (size_t i = 0; i < order.size(); ++i)
        EXPECT_EQ(positions[order[i]], static_cast<int>(i)) << order[i];
}

TEST_P(JobQueueContract, PausedSessionIsSkippedAndKeepsItsJobs) {
    q.push("a", "a0", Priority::NORMAL);
    q.push("b", "b0", Priority::NORMAL);
    q.set_paused("a", true);
    EXPECT_EQ(q.pop()->job_id, "b0");
    EXPECT_FALSE(q.pop());
    q.set_paused("a", false);
    EXPECT_EQ(q.pop()->job_id, "a0");
}

TEST_P(JobQueueContract, RemoveAndClear) {
    q.push("a", "a0", Priority::NORMAL);
    q.push("a", "a1", Priority::NORMAL);
    q.push("b", "b0", Priority::NORMAL);
    EXPECT_FALSE(q.remove("b", "a0"));  // another session's id
    EXPECT_TRUE(q.remove("a", "a0"));
    EXPECT_EQ(q.clear_session("a"), (std::vector<std::string>{"a1"}));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.pop()->job_id, "b0");
}

TEST_P(JobQueueContract, OperationNumbersIncreaseAcrossPushesAndPops) {
    const uint64_t push_a = q.push("a", "a0", Priority::NORMAL);
    const uint64_t push_b = q.push("b", "b0", Priority::NORMAL);
    const auto first = q.pop();
    const uint64_t push_a1 = q.push("a", "a1", Priority::NORMAL);
    const auto second = q.pop();
    ASSERT_TRUE(first && second);
    EXPECT_LT(push_a, push_b);
    EXPECT_LT(push_b, first->queue_op);
    EXPECT_LT(first->queue_op, push_a1);
    EXPECT_LT(push_a1, second->queue_op);
    EXPECT_EQ(first->session_id, "a");
    EXPECT_EQ(second->session_id, "b");
}

TEST_P(JobQueueContract, AckedJobIsNotHandedOutAgain) {
    q.push("a", "a0", Priority::NORMAL);
    const auto job = q.pop();
    ASSERT_TRUE(job);
    q.ack(*job);
    EXPECT_FALSE(q.renew(*job));
    EXPECT_FALSE(q.pop());
    q.ack(*job);  // a second ack changes nothing
    EXPECT_FALSE(q.pop());
}

TEST_P(JobQueueContract, RenewHoldsOnlyAPoppedJobNotYetAcked) {
    q.push("a", "a0", Priority::NORMAL);
    q.push("a", "a1", Priority::NORMAL);
    const auto job = q.pop();
    ASSERT_TRUE(job);
    EXPECT_TRUE(q.renew(*job));
    EXPECT_TRUE(q.renew(*job));
    EXPECT_FALSE(q.renew(QueuedJob{"a", "a1", 0, 1}));  // still queued
    EXPECT_FALSE(q.renew(QueuedJob{"b", "a0", 0, 1}));  // another session's id
    EXPECT_EQ(q.position("a", "a1"), 0);                // claims are not queued
    EXPECT_EQ(q.size(), 1u);
}

TEST_P(JobQueueContract, FairPopsAreFirstDeliveries) {
    q.push("a", "a0", Priority::NORMAL);
    q.push("b", "b0", Priority::HIGH);
    q.push("a", "a1", Priority::LOW);
    int popped = 0;
    while (auto job = q.pop()) {
        EXPECT_EQ(job->delivery, 1) << job->job_id;
        ++popped;
    }
    EXPECT_EQ(popped, 3);
}

TEST_P(JobQueueContract, PushWithinRefusesAtEitherLimitAndChangesNothing) {
    const QueueLimits limits{3, 2};
    EXPECT_EQ(q.push_within("a", "a0", Priority::NORMAL, limits).outcome, PushOutcome::PUSHED);
    const PushResult second = q.push_within("a", "a1", Priority::NORMAL, limits);
    EXPECT_EQ(second.outcome, PushOutcome::PUSHED);
    EXPECT_GT(second.queue_op, 0u);
    EXPECT_EQ(q.push_within("a", "a2", Priority::HIGH, limits).outcome,
              PushOutcome::SESSION_QUEUE_FULL);
    EXPECT_EQ(q.session_size("a"), 2u);
    EXPECT_FALSE(q.position("a", "a2"));
    EXPECT_EQ(q.push_within("b", "b0", Priority::NORMAL, limits).outcome, PushOutcome::PUSHED);
    // Both limits reached: the whole queue's is reported.
    EXPECT_EQ(q.push_within("a", "a3", Priority::NORMAL, limits).outcome, PushOutcome::QUEUE_FULL);
    EXPECT_EQ(q.push_within("c", "c0", Priority::NORMAL, limits).outcome, PushOutcome::QUEUE_FULL);
    EXPECT_EQ(q.size(), 3u);
    // A pop makes room; a claimed job does not count as queued. No limit: 0.
    ASSERT_TRUE(q.pop());
    EXPECT_EQ(q.push_within("c", "c0", Priority::NORMAL, limits).outcome, PushOutcome::PUSHED);
    EXPECT_EQ(q.push_within("c", "c1", Priority::NORMAL, QueueLimits{}).outcome,
              PushOutcome::PUSHED);
    EXPECT_EQ(q.size(), 4u);
}

TEST_P(JobQueueContract, PushWithinLeavesAQueuedOrClaimedJobAsItIs) {
    q.push("a", "a0", Priority::NORMAL);
    q.push("a", "a1", Priority::LOW);
    const auto claimed = q.pop();
    ASSERT_TRUE(claimed);
    ASSERT_EQ(claimed->job_id, "a0");
    EXPECT_EQ(q.push_within("a", "a0", Priority::HIGH, QueueLimits{}).outcome,
              PushOutcome::ALREADY_THERE);
    EXPECT_EQ(q.push_within("a", "a1", Priority::HIGH, QueueLimits{}).outcome,
              PushOutcome::ALREADY_THERE);
    EXPECT_EQ(q.size(), 1u);
    EXPECT_FALSE(q.position("a", "a0")) << "a claimed job was queued again";
    EXPECT_EQ(q.pop()->job_id, "a1");
    EXPECT_FALSE(q.pop());
    // Once acked it is neither: a push queues it again.
    q.ack(*claimed);
    EXPECT_EQ(q.push_within("a", "a0", Priority::NORMAL, QueueLimits{}).outcome,
              PushOutcome::PUSHED);
    EXPECT_EQ(q.size(), 1u);
}

TEST_P(JobQueueContract, CancelRequestReachesOnlyAClaimedJob) {
    q.push("a", "a0", Priority::NORMAL);
    q.push("a", "a1", Priority::NORMAL);
    const auto job = q.pop();
    ASSERT_TRUE(job);
    EXPECT_FALSE(q.cancel_requested(*job));
    EXPECT_FALSE(q.request_cancel("a", "a1")) << "a queued job is removed, not flagged";
    EXPECT_FALSE(q.request_cancel("b", "a0")) << "another session's id";
    EXPECT_FALSE(q.request_cancel("a", "nothing"));
    EXPECT_TRUE(q.request_cancel("a", "a0"));
    EXPECT_TRUE(q.cancel_requested(*job));
    const auto next = q.pop();
    ASSERT_TRUE(next);
    EXPECT_FALSE(q.cancel_requested(*next));
    q.ack(*job);
    EXPECT_FALSE(q.cancel_requested(*job));
    EXPECT_FALSE(q.request_cancel("a", "a0")) << "an acked job is not claimed";
}

}  // namespace
}  // namespace kiln::scheduler
