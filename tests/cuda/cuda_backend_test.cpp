// The CUDA backend's behaviour beyond each op's numbers (those are the op-case table's,
// tests/cuda/op_cases_test.cpp): the timed convolution-algorithm search, out-of-memory as an
// error, cancellation between ops, and a refused input count.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "tests/cuda/cuda_device.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_cases.h"

namespace kiln::test {
namespace {

using engine::Graph;
using engine::ValueId;

// A plan built with the timed algorithm search (cudnnFindConvolutionForwardAlgorithmEx)
// computes what the heuristic plan computes: both within the case's bounds of the CPU backend
// and of each other (different algorithms round differently), and every cuDNN convolution
// reports the time of its chosen algorithm. Over every table case with a convolution and a
// CUDA bound.
TEST(CudaBackend, TimedAlgorithmSearchMatchesTheHeuristicPlan) {
    KILN_REQUIRE_CUDA();
    engine::cuda::CudaBackendOptions timed_options;
    timed_options.conv_algo_search = engine::cuda::ConvAlgoSearch::TIMED;
    auto heuristic = engine::cuda::make_cuda_backend();
    auto timed = engine::cuda::make_cuda_backend(timed_options);
    auto h_ctx = heuristic->create_context({});
    auto t_ctx = timed->create_context({});
    auto cpu = engine::cpu::make_cpu_backend();
    auto cpu_ctx = cpu->create_context({2});
    int convs = 0;
    for (const OpCase* row : op_case_params(true)) {
        const OpCase& tc = *row;
        if (!op_kinds_of(tc).contains(engine::OpKind::CONV2D))
            continue;
        const BuiltCase b = build_case(tc);
        std::vector<const float*> inputs;
        for (const auto& in : b.inputs)
            inputs.push_back(in.data());
        const size_t n = b.output_floats * static_cast<size_t>(tc.batch);
        std::vector<float> want(n), a(n), c(n);
        cpu->compile(b.graph, *cpu_ctx)->run_batch(inputs, want.data(), tc.batch, {});
        auto hp = heuristic->compile(b.graph, *h_ctx);
        auto tp = timed->compile(b.graph, *t_ctx);
        hp->run_batch(inputs, a.data(), tc.batch, {});
        tp->run_batch(inputs, c.data(), tc.batch, {});
        const std::string desc = tp->describe();
        for (const Comparison& cmp : {compare(c, want), compare(c, a)}) {
            EXPECT_TRUE(cmp.finite) << tc.name;
            EXPECT_LE(cmp.nmse, tc.cuda->max_nmse) << tc.name << "\n" << desc;
            EXPECT_LE(cmp.max_abs, tc.cuda->max_abs) << tc.name;
        }
        EXPECT_LE(tp->peak_bytes(), timed->estimate_peak_bytes(b.graph)) << tc.name;
        // Every cuDNN line names its timed algorithm (or why the search fell back).
        for (size_t pos = desc.find("cudnn "); pos != std::string::npos;
             pos = desc.find("cudnn ", pos + 1)) {
            const std::string line = desc.substr(pos, desc.find('\n', pos) - pos);
            EXPECT_TRUE(line.find(" timed ") != std::string::npos ||
                        line.find("heuristic") != std::string::npos)
                << line;
            ++convs;
        }
    }
    EXPECT_GT(convs, 0);
}

TEST(CudaBackend, PoolReportsOutOfMemoryAsAnError) {
    KILN_REQUIRE_CUDA();
    auto cuda = engine::cuda::make_cuda_backend();
    auto ctx = cuda->create_context({});
    try {
        ctx->pool().allocate(size_t{1} << 50);  // 1 PiB
        FAIL() << "allocation of 1 PiB succeeded";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::OUT_OF_MEMORY) << e.what();
    }
    // The context stays usable.
    void* p = ctx->pool().allocate(1024);
    EXPECT_EQ(ctx->pool().bytes_in_use(), 1024u);
    ctx->pool().release(p, 1024);
    EXPECT_EQ(ctx->pool().bytes_in_use(), 0u);
}

TEST(CudaBackend, CancelStopsBetweenOps) {
    KILN_REQUIRE_CUDA();
    Graph g;
    const ValueId x = g.input(8, 8, 3);
    g.output(g.upsample_nearest(g.upsample_nearest(x, 2), 2));
    auto cuda = engine::cuda::make_cuda_backend();
    auto ctx = cuda->create_context({});
    auto plan = cuda->compile(g, *ctx);
    std::atomic<bool> cancel{true};
    engine::RunControl control;
    control.cancel = &cancel;
    std::vector<float> in(8 * 8 * 3, 0.5f), out(32 * 32 * 3);
    try {
        plan->run(in.data(), out.data(), control);
        FAIL() << "not cancelled";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::CANCELLED);
    }
    cancel = false;
    plan->run(in.data(), out.data(), control);
    EXPECT_EQ(out[0], 0.5f);
}

TEST(CudaBackend, WrongInputCountIsRejected) {
    KILN_REQUIRE_CUDA();
    Graph g;
    const ValueId a = g.input(2, 2, 8);
    const ValueId b = g.input(2, 2, 8);
    g.output(g.concat(a, b));
    auto cuda = engine::cuda::make_cuda_backend();
    auto ctx = cuda->create_context({});
    auto plan = cuda->compile(g, *ctx);
    std::vector<float> in(32), out(64);
    const float* one[1] = {in.data()};
    EXPECT_THROW(plan->run_batch(one, out.data(), 1, {}), core::Error);
}

}  // namespace
}  // namespace kiln::test
