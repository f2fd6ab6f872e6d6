// Every case of the op-case table (tests/ops/op_cases.h) with a CUDA bound on the CUDA backend
// against the CPU backend, on the same engine::Graph and inputs: NMSE and max abs error within
// the case's bound (fp16 storage; the bounds are explained in tests/ops/case_families.h), no
// write past the output, peak bytes within the estimate, one timing per op, and the plan's
// CUDA graph replaying the eager run bit for bit; for batches, each sample equals that sample
// run alone. The CPU suite has already checked the same cases against the reference.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "tests/cuda/cuda_device.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_cases.h"

namespace kiln::test {
namespace {

std::vector<const float*> pointers(const std::vector<std::vector<float>>& inputs) {
    std::vector<const float*> out;
    for (const auto& in : inputs)
        out.push_back(in.data());
    return out;
}

// One sample through a fresh context and plan.
std::vector<float> run_alone(engine::Backend& backend,
                             const BuiltCase& b,
                             const std::vector<std::vector<float>>& sample) {
    auto ctx = backend.create_context({});
    auto plan = backend.compile(b.graph, *ctx);
    std::vector<float> out(b.output_floats);
    plan->run_batch(pointers(sample), out.data(), 1, {});
    return out;
}

class CudaVsCpu : public ::testing::TestWithParam<const OpCase*> {};

TEST_P(CudaVsCpu, MatchesTheCpuBackend) {
    KILN_REQUIRE_CUDA();
    const OpCase& tc = *GetParam();
    const CudaBound& bound = *tc.cuda;
    const BuiltCase b = build_case(tc);
    const std::vector<const float*> inputs = pointers(b.inputs);
    const size_t floats = b.output_floats * static_cast<size_t>(tc.batch);

    auto cpu = engine::cpu::make_cpu_backend();
    auto cpu_ctx = cpu->create_context({2});
    std::vector<float> want(floats);
    cpu->compile(b.graph, *cpu_ctx)->run_batch(inputs, want.data(), tc.batch, {});

    auto cuda = engine::cuda::make_cuda_backend();
    auto ctx = cuda->create_context({});
    auto plan = cuda->compile(b.graph, *ctx);
    std::vector<float> got(floats + 16, 12345.0f);
    std::vector<std::pair<std::string, double>> times;
    engine::RunControl control;
    control.op_times = &times;
    plan->run_batch(inputs, got.data(), tc.batch, control);
    for (size_t i = floats; i < got.size(); ++i)
        ASSERT_EQ(got[i], 12345.0f) << "write past the output";
    got.resize(floats);
    const Comparison cmp = compare(got, want);
    EXPECT_TRUE(cmp.finite) << tc.name;
    EXPECT_LE(cmp.nmse, bound.max_nmse) << tc.name << "\n" << plan->describe();
    EXPECT_LE(cmp.max_abs, bound.max_abs) << tc.name;
    EXPECT_LE(plan->peak_bytes(), cuda->estimate_peak_bytes(b.graph));
    EXPECT_EQ(times.size(), b.graph.ops().size() * static_cast<size_t>(tc.batch));

    // A second run, replaying the plan's CUDA graph (the first was eager: it asked for per-op
    // times), gives the same bits: no state left between runs, graph == eager launches.
    EXPECT_NE(plan->describe().find("execution: cuda graph"), std::string::npos)
        << plan->describe();
    std::vector<float> again(floats);
    plan->run_batch(inputs, again.data(), tc.batch, {});
    EXPECT_EQ(again, got);

    // Each sample of a batch equals that sample run alone (no state between samples).
    for (int n = 0; tc.batch > 1 && n < tc.batch; ++n) {
        const std::vector<float> alone = run_alone(*cuda, b, sample_inputs(b, tc.batch, n));
        const auto begin = got.begin() + static_cast<std::ptrdiff_t>(b.output_floats * n);
        const std::vector<float> slice(begin, begin + static_cast<std::ptrdiff_t>(b.output_floats));
        EXPECT_EQ(alone, slice) << "sample " << n;
    }
}

INSTANTIATE_TEST_SUITE_P(Ops,
                         CudaVsCpu,
                         ::testing::ValuesIn(op_case_params(true)),
                         [](const ::testing::TestParamInfo<const OpCase*>& param) {
                             return op_case_test_name(*param.param);
                         });

}  // namespace
}  // namespace kiln::test
