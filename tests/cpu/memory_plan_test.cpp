#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/graph/memory_plan.h"

namespace kiln::engine {
namespace {

TEST(MemoryPlan, LiveBuffersNeverOverlap) {
    std::mt19937 rng(3);
    for (int trial = 0; trial < 200; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 30);
        std::vector<BufferLifetime> life(static_cast<size_t>(n));
        std::vector<size_t> sizes(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) {
            const int a = static_cast<int>(rng() % 40), b = static_cast<int>(rng() % 40);
            life[static_cast<size_t>(i)] = {std::min(a, b), std::max(a, b)};
            sizes[static_cast<size_t>(i)] = rng() % 5 == 0 ? 0 : 1 + rng() % 5000;
        }
        const MemoryPlan plan = plan_memory(life, sizes, 64);
        size_t sum = 0;
        for (int i = 0; i < n; ++i) {
            const auto ui = static_cast<size_t>(i);
            sum += (sizes[ui] + 63) / 64 * 64;
            EXPECT_EQ(plan.offsets[ui] % 64, 0u);
            EXPECT_LE(plan.offsets[ui] + sizes[ui], plan.arena_bytes);
            for (int j = i + 1; j < n; ++j) {
                const auto uj = static_cast<size_t>(j);
                if (sizes[ui] == 0 || sizes[uj] == 0)
                    continue;
                const bool live =
                    life[ui].first_op <= life[uj].last_op && life[uj].first_op <= life[ui].last_op;
                const bool overlap = plan.offsets[ui] < plan.offsets[uj] + sizes[uj] &&
                                     plan.offsets[uj] < plan.offsets[ui] + sizes[ui];
                EXPECT_FALSE(live && overlap) << "trial " << trial << " buffers " << i << "," << j;
            }
        }
        EXPECT_LE(plan.arena_bytes, sum);
    }
}

TEST(MemoryPlan, SequentialBuffersShareMemory) {
    // A chain a -> b -> c: a and c never live together and reuse the same bytes.
    const std::vector<BufferLifetime> life = {{0, 1}, {1, 2}, {2, 3}};
    const MemoryPlan plan = plan_memory(life, {1000, 1000, 1000}, 64);
    EXPECT_EQ(plan.arena_bytes, 2048u);
}

TEST(MemoryPlan, LifetimesFromGraph) {
    Graph g;
    auto x = g.input(4, 4, 3);
    auto buf = g.buffer(4, 4, 6);
    auto y = g.add(x, x);
    g.output(y);
    const auto life = buffer_lifetimes(g);
    EXPECT_EQ(life[static_cast<size_t>(g.value(x).buffer)].first_op, 0);
    EXPECT_EQ(life[static_cast<size_t>(g.value(x).buffer)].last_op, 1);
    EXPECT_EQ(life[static_cast<size_t>(g.value(buf).buffer)].first_op, -1);  // never used
}

}  // namespace
}  // namespace kiln::engine

namespace kiln::engine {
namespace {

// Graph builders keep copies of the values they check: adding a value may grow the table
// (a reference into it would dangle, and garbage shapes would be checked).
TEST(Graph, BuildersSurviveValueTableGrowth) {
    Graph g;
    auto x = g.input(6, 5, 8);
    ConvWeights w;
    w.in_channels = 8;
    w.out_channels = 8;
    w.kernel = 1;
    w.weight = std::make_shared<const std::vector<float>>(64, 0.1f);
    for (int i = 0; i < 500; ++i) {
        Epilogue e;
        e.adds.push_back({g.channels(x, 0, 8), 1.0f});
        x = g.conv2d(std::to_string(i), x, w, e);  // ("c" + ... trips GCC 12's -Wrestrict)
        x = g.add(g.channels(x, 0, 8), x);
    }
    g.output(x);
    EXPECT_EQ(g.ops().size(), 1002u);
}

// A graph's output reached through one view of a buffer that two convolutions write: both
// stay; a branch that never reaches the output goes; the unused second input stays.
TEST(Graph, DropsOpsNotReachingTheOutput) {
    Graph g;
    const ValueId x = g.input(4, 4, 8);
    const ValueId unused = g.input(1, 1, 3);
    ConvWeights w;
    w.in_channels = 8;
    w.out_channels = 4;
    w.kernel = 1;
    w.weight = std::make_shared<const std::vector<float>>(32, 0.1f);
    const ValueId both = g.buffer(4, 4, 8);
    g.conv2d("left", x, w, {}, g.channels(both, 0, 4));
    g.conv2d("right", x, w, {}, g.channels(both, 4, 4));
    const ValueId dead = g.global_avg_pool(g.conv2d("dead", x, w, {}));
    g.output(g.global_avg_pool(both));
    ASSERT_EQ(g.ops().size(), 8u);
    g.drop_ops_not_reaching_output();
    std::vector<std::string> names;
    for (const Op& op : g.ops())
        names.push_back(op.name);
    EXPECT_EQ(names, (std::vector<std::string>{"input", "input1", "left", "right",
                                               "global_avg_pool", "output"}));
    EXPECT_EQ(g.input_values(), (std::vector<ValueId>{x, unused}));
    // The dropped branch's buffers take no place in a memory plan.
    const auto life = buffer_lifetimes(g);
    EXPECT_LT(life[static_cast<size_t>(g.value(dead).buffer)].first_op, 0);
}

}  // namespace
}  // namespace kiln::engine
