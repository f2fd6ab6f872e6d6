// The CPU backend on the diffusion UNet's graphs beyond each op's numbers (those are the
// op-case table's, tests/cpu/op_cases_test.cpp): the fast exp / erf / SiLU / reciprocal
// approximations against libm, run_batch against single runs, and oneDNN's JIT kernels (not
// its reference ones) for the transformer's linear layers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_math.h"
#include "tests/cpu/reference_graph.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_builders.h"

namespace kiln::test {
namespace {

using engine::Graph;
using engine::ValueId;

// `batch` samples of each input of g, uniform in [-1, 1].
std::vector<std::vector<float>> make_inputs(const Graph& g, int batch, uint32_t seed) {
    std::vector<std::vector<float>> inputs;
    for (const ValueId id : g.input_values()) {
        const auto& v = g.value(id);
        inputs.push_back(random_vector(static_cast<size_t>(v.h) * v.w * v.c * batch,
                                       seed + static_cast<uint32_t>(inputs.size())));
    }
    return inputs;
}

size_t output_floats(const Graph& g) {
    const auto& v = g.value(g.output_value());
    return static_cast<size_t>(v.h) * v.w * v.c;
}

TEST(DiffusionOps, MathApproximationsMatchLibm) {
    double exp_rel = 0, erf_abs = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.00731f) {
        const double want = std::exp(static_cast<double>(x));
        exp_rel = std::max(exp_rel, std::abs(engine::cpu::exp_approx(x) - want) / want);
    }
    for (float x = -6.0f; x <= 6.0f; x += 0.000377f) {
        erf_abs = std::max(erf_abs,
                           std::abs(engine::cpu::erf_approx(x) - std::erf(static_cast<double>(x))));
    }
    double silu_rel = 0, recip_rel = 0;
    for (float x = -80.0f; x <= 80.0f; x += 0.00317f) {
        const double want = x / (1.0 + std::exp(-static_cast<double>(x)));
        if (want != 0)
            silu_rel =
                std::max(silu_rel, std::abs(engine::cpu::silu_approx(x) - want) / std::abs(want));
    }
    for (float y = 1e-30f; y < 1e30f; y *= 1.0137f) {
        recip_rel = std::max(recip_rel,
                             std::abs(engine::cpu::recip_approx(y) * static_cast<double>(y) - 1.0));
    }
    std::printf(
        "exp max rel error %.3g, erf max abs error %.3g, silu max rel error %.3g, "
        "reciprocal max rel error %.3g\n",
        exp_rel, erf_abs, silu_rel, recip_rel);
    EXPECT_LE(silu_rel, 5e-7);
    EXPECT_LE(recip_rel, 3e-7);
    EXPECT_LE(exp_rel, 3e-7);
    EXPECT_LE(erf_abs, 5e-7);
    EXPECT_LE(std::abs(engine::cpu::silu_approx(-200.0f)), 1e-30f);
    EXPECT_TRUE(std::isfinite(engine::cpu::silu_approx(-1e30f)));
    EXPECT_EQ(engine::cpu::gelu_approx(0.0f), 0.0f);
}

TEST(DiffusionOps, RunBatchEqualsSingleRuns) {
    Graph g;
    const ValueId x = g.input(6, 5, 32);
    const ValueId ctx = g.input(4, 1, 16);
    g.output(transformer_block(g, x, ctx));
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({2});
    auto plan = backend->compile(g, *context);
    constexpr int kBatch = 3;
    const auto inputs = make_inputs(g, kBatch, 21);
    const size_t out = output_floats(g);
    std::vector<float> batched(out * kBatch + 8, 777.0f);
    const float* both[2] = {inputs[0].data(), inputs[1].data()};
    plan->run_batch(both, batched.data(), kBatch, {});
    for (size_t i = out * kBatch; i < batched.size(); ++i)
        ASSERT_EQ(batched[i], 777.0f);
    const size_t nx = 6 * 5 * 32, nc = 4 * 16;
    for (int n = 0; n < kBatch; ++n) {
        std::vector<float> single(out);
        const float* sample[2] = {inputs[0].data() + nx * n, inputs[1].data() + nc * n};
        plan->run_batch(sample, single.data(), 1, {});
        for (size_t i = 0; i < out; ++i)
            ASSERT_EQ(batched[out * n + i], single[i]) << "sample " << n << " float " << i;
        const std::vector<float> rx(sample[0], sample[0] + nx), rc(sample[1], sample[1] + nc);
        const auto want = run_reference(g, std::vector<std::vector<float>>{rx, rc});
        EXPECT_LE(compare(single, want).nmse, 1e-9) << "sample " << n;
    }
    // The wrong number of inputs is refused.
    const float* one[1] = {inputs[0].data()};
    EXPECT_THROW(plan->run_batch(one, batched.data(), 1, {}), core::Error);
}

TEST(DiffusionOps, TokenLinearLayersUseOnednnJitKernels) {
    // 1x1 convolutions on [L, 1, d] token sequences are the transformer's linear layers.
    Graph g;
    const ValueId x = g.input(1024, 1, 32);
    const ValueId ctx = g.input(77, 1, 64);
    g.output(transformer_block(g, x, ctx));
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({2});
    auto plan = backend->compile(g, *context);
    const std::string described = plan->describe();
    std::printf("%s", described.c_str());
    EXPECT_EQ(described.find("ref"), std::string::npos) << described;
    EXPECT_NE(described.find("lane attention"), std::string::npos) << described;
}

}  // namespace
}  // namespace kiln::test
