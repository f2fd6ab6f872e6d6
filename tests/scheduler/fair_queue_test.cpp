#include "scheduler/fair_queue.h"

#include <gtest/gtest.h>

namespace kiln::scheduler {
namespace {

std::string name(const char* prefix, int i) {
    std::string s = prefix;
    s += std::to_string(i);
    return s;
}

std::vector<std::string> drain(FairQueue& q) {
    std::vector<std::string> out;
    while (auto job = q.pop())
        out.push_back(job->job_id);
    return out;
}

TEST(FairQueue, FifoWithinSessionPriorityFirst) {
    FairQueue q;
    q.push("a", "a1", Priority::NORMAL);
    q.push("a", "a2", Priority::LOW);
    q.push("a", "a3", Priority::HIGH);
    q.push("a", "a4", Priority::NORMAL);
    EXPECT_EQ(drain(q), (std::vector<std::string>{"a3", "a1", "a4", "a2"}));
    EXPECT_EQ(q.size(), 0u);
}

TEST(FairQueue, RoundRobinAcrossSessions) {
    FairQueue q;
    for (int i = 0; i < 4; ++i)
        q.push("a", name("a", i), Priority::NORMAL);
    q.push("b", "b0", Priority::NORMAL);
    q.push("c", "c0", Priority::LOW);
    EXPECT_EQ(drain(q), (std::vector<std::string>{"a0", "b0", "c0", "a1", "a2", "a3"}));
}

TEST(FairQueue, LateSessionWaitsAtMostOneJob) {
    FairQueue q;
    for (int i = 0; i < 30; ++i)
        q.push("a", name("a", i), Priority::NORMAL);
    ASSERT_EQ(q.pop()->job_id, "a0");  // running
    q.push("b", "b0", Priority::NORMAL);
    EXPECT_LE(*q.position("b", "b0"), 1);
    const auto order = drain(q);
    const auto b = std::find(order.begin(), order.end(), "b0") - order.begin();
    EXPECT_LE(b, 1);
}

TEST(FairQueue, PositionMatchesPopOrder) {
    FairQueue q;
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

TEST(FairQueue, PausedSessionIsSkippedAndKeepsItsJobs) {
    FairQueue q;
    q.push("a", "a0", Priority::NORMAL);
    q.push("b", "b0", Priority::NORMAL);
    q.set_paused("a", true);
    EXPECT_EQ(q.pop()->job_id, "b0");
    EXPECT_FALSE(q.pop());
    q.set_paused("a", false);
    EXPECT_EQ(q.pop()->job_id, "a0");
}

TEST(FairQueue, RemoveAndClear) {
    FairQueue q;
    q.push("a", "a0", Priority::NORMAL);
    q.push("a", "a1", Priority::NORMAL);
    q.push("b", "b0", Priority::NORMAL);
    EXPECT_FALSE(q.remove("b", "a0"));  // another session's id
    EXPECT_TRUE(q.remove("a", "a0"));
    EXPECT_EQ(q.clear_session("a"), (std::vector<std::string>{"a1"}));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.pop()->job_id, "b0");
}

}  // namespace
}  // namespace kiln::scheduler
