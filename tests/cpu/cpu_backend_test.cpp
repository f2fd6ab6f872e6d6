// The CPU backend's run control: cancellation between ops and progress per op. Each op's
// numbers are the op-case table's (tests/cpu/op_cases_test.cpp).
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "tests/ops/graph_cases.h"

namespace kiln::test {
namespace {

using engine::Graph;

TEST(CpuBackend, CancelStopsBetweenOps) {
    Graph g;
    auto x = g.input(8, 8, 3);
    g.output(g.conv2d("a", x, random_conv(3, 3, 3, 1), {}));
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({1});
    auto plan = backend->compile(g, *context);
    std::atomic<bool> cancel{true};
    engine::RunControl control;
    control.cancel = &cancel;
    std::vector<float> in(8 * 8 * 3, 0.5f), out(8 * 8 * 3);
    try {
        plan->run(in.data(), out.data(), control);
        FAIL() << "a cancelled run returned";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::CANCELLED);
    }
}

TEST(CpuBackend, ProgressCountsEveryOp) {
    Graph g;
    auto x = g.input(4, 4, 3);
    g.output(g.upsample_nearest(g.conv2d("a", x, random_conv(3, 3, 3, 1), {}), 2));
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({1});
    auto plan = backend->compile(g, *context);
    std::vector<int> seen;
    engine::RunControl control;
    control.on_op = [&](int done, int total) {
        EXPECT_EQ(total, 4);
        seen.push_back(done);
    };
    std::vector<float> in(4 * 4 * 3, 0.5f), out(8 * 8 * 3);
    plan->run(in.data(), out.data(), control);
    EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace kiln::test
