// Every op and convolution epilogue on the CUDA backend against the CPU backend, on the same
// engine::Graph. core::Error metric per case: normalised MSE (sum (a-b)^2 / sum b^2) and max abs
// error. fp16 bounds: storage rounds each value to 2^-11 relative, so single ops on data in
// [-1, 1] stay within NMSE 1e-6 and max abs 2e-3; convolutions (fp16 weights and
// activations, fp32 accumulation) within NMSE 2e-5 per layer and max abs 2e-2.
#include <gtest/gtest.h>

#include <cctype>
#include <functional>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "tests/cpu/graph_cases.h"
#include "tests/cuda/cuda_device.h"

namespace kiln::test {
namespace {

using engine::Activation;
using engine::Epilogue;
using engine::Graph;
using engine::ValueId;

struct Case {
    std::string name;
    int h, w, c;
    std::function<ValueId(Graph&, ValueId)> build;
    double max_nmse = 1e-6;
    double max_abs = 2e-3;
};

// gtest prints a parameter in test listings: its name, not its bytes.
void PrintTo(const Case& c, std::ostream* out) {
    *out << c.name;
}

constexpr double kConvNmse = 2e-5;
constexpr double kConvAbs = 2e-2;

Epilogue act(Activation a, float alpha = 0.2f) {
    Epilogue e;
    e.act = a;
    e.alpha = alpha;
    return e;
}

std::vector<Case> cases() {
    std::vector<Case> v;
    // Convolutions: fused bias+ReLU, epilogue kernel paths, thin and odd channel counts
    // (scalar epilogue), 1x1, no bias.
    v.push_back({"conv3x3 3->64 relu (fused)", 16, 20, 3,
                 [](Graph& g, ValueId x) {
                     return g.conv2d("c", x, random_conv(3, 64, 3, 1), act(Activation::RELU));
                 },
                 kConvNmse, kConvAbs});
    v.push_back({"conv3x3 3->64->64 lrelu", 12, 10, 3,
                 [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 64, 3, 2), {});
                     return g.conv2d("b", a, random_conv(64, 64, 3, 3),
                                     act(Activation::LEAKY_RELU));
                 },
                 2 * kConvNmse, kConvAbs});
    v.push_back({"conv odd channels 3->8->27 relu/none", 7, 13, 3,
                 [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 8, 3, 4), act(Activation::RELU));
                     return g.conv2d("b", a, random_conv(8, 27, 3, 5), {});
                 },
                 2 * kConvNmse, kConvAbs});
    v.push_back({"conv1x1 no bias", 6, 6, 3,
                 [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 16, 1, 6, false), {});
                     return g.conv2d("b", a, random_conv(16, 5, 1, 7, false), {});
                 },
                 2 * kConvNmse, kConvAbs});
    v.push_back({"conv prelu", 9, 9, 3,
                 [](Graph& g, ValueId x) {
                     Epilogue e = act(Activation::PRELU);
                     e.prelu_slope = random_vector(24, 8, 0.5f);
                     return g.conv2d("p", x, random_conv(3, 24, 3, 9), e);
                 },
                 kConvNmse, kConvAbs});
    v.push_back({"conv residual adds (RRDB: y*0.2 + x, twice)", 8, 8, 3,
                 [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 32, 3, 10), {});
                     auto b = g.conv2d("b", a, random_conv(32, 32, 3, 11), {});
                     Epilogue e = act(Activation::LEAKY_RELU);
                     e.adds.push_back({a, 0.2f});
                     e.adds.push_back({b, 0.5f});
                     return g.conv2d("c", b, random_conv(32, 32, 3, 12), e);
                 },
                 3 * kConvNmse, kConvAbs});
    v.push_back({"dense block: convs into channel slices of one buffer", 10, 12, 3,
                 [](Graph& g, ValueId x) {
                     auto stem = g.conv2d("stem", x, random_conv(3, 64, 3, 13), {});
                     auto cat = g.buffer(10, 12, 64 + 3 * 32);
                     auto x0 = g.channels(cat, 0, 64);
                     g.conv2d("copy", stem, random_conv(64, 64, 1, 14), {}, x0);
                     for (int i = 0; i < 3; ++i) {
                         auto in = g.channels(cat, 0, 64 + i * 32);
                         auto out = g.channels(cat, 64 + i * 32, 32);
                         g.conv2d("d" + std::to_string(i), in,
                                  random_conv(64 + i * 32, 32, 3, 15 + static_cast<uint32_t>(i)),
                                  act(Activation::LEAKY_RELU), out);
                     }
                     Epilogue e;
                     e.adds.push_back({stem, 0.2f});
                     return g.conv2d("fuse", cat, random_conv(160, 64, 3, 20), e);
                 },
                 6 * kConvNmse, 2 * kConvAbs});
    // Resampling and elementwise ops, on 64 channels (128-bit path) and 3 (scalar path).
    for (int c : {3, 64}) {
        const std::string s = " c" + std::to_string(c);
        v.push_back({"nearest x2" + s, 7, 9, c,
                     [](Graph& g, ValueId x) { return g.upsample_nearest(x, 2); }});
        v.push_back({"bilinear x2" + s, 7, 9, c,
                     [](Graph& g, ValueId x) { return g.upsample_bilinear(x, 2); }});
        v.push_back({"bilinear x3" + s, 5, 4, c,
                     [](Graph& g, ValueId x) { return g.upsample_bilinear(x, 3); }});
        v.push_back({"bicubic 7x9 -> 17x5" + s, 7, 9, c,
                     [](Graph& g, ValueId x) { return g.resize_bicubic(x, 17, 5); }});
        v.push_back({"add scaled" + s, 6, 7, c, [](Graph& g, ValueId x) {
                         auto n = g.upsample_nearest(x, 1);
                         return g.add(x, n, 0.2f);
                     }});
    }
    v.push_back(
        {"pixel shuffle r2", 5, 6, 12, [](Graph& g, ValueId x) { return g.pixel_shuffle(x, 2); }});
    v.push_back(
        {"pixel shuffle r3", 4, 3, 27, [](Graph& g, ValueId x) { return g.pixel_shuffle(x, 3); }});
    v.push_back({"pixel unshuffle r2", 6, 8, 3,
                 [](Graph& g, ValueId x) { return g.pixel_unshuffle(x, 2); }});
    v.push_back({"unshuffle -> conv -> shuffle (Real-ESRGAN x2 front/back)", 8, 8, 3,
                 [](Graph& g, ValueId x) {
                     auto u = g.pixel_unshuffle(x, 2);
                     auto c = g.conv2d("c", u, random_conv(12, 12, 3, 21), {});
                     return g.pixel_shuffle(c, 2);
                 },
                 kConvNmse, kConvAbs});
    v.push_back({"add of channel slices", 5, 5, 3,
                 [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 48, 3, 22), {});
                     auto lo = g.channels(a, 8, 16);
                     auto hi = g.channels(a, 32, 16);
                     return g.add(lo, hi, 0.5f);
                 },
                 kConvNmse, kConvAbs});
    return v;
}

class CudaVsCpu : public ::testing::TestWithParam<Case> {};

TEST_P(CudaVsCpu, MatchesTheCpuBackend) {
    KILN_REQUIRE_CUDA();
    const Case& tc = GetParam();
    Graph g;
    const ValueId x = g.input(tc.h, tc.w, tc.c);
    g.output(tc.build(g, x));
    const auto input = random_vector(static_cast<size_t>(tc.h) * tc.w * tc.c, 7);

    auto cpu = engine::cpu::make_cpu_backend();
    auto cpu_ctx = cpu->create_context({2});
    auto cpu_plan = cpu->compile(g, *cpu_ctx);
    const engine::Value& out = g.value(g.output_value());
    std::vector<float> want(static_cast<size_t>(out.h) * out.w * out.c);
    cpu_plan->run(input.data(), want.data(), {});

    auto cuda = engine::cuda::make_cuda_backend();
    auto ctx = cuda->create_context({});
    auto plan = cuda->compile(g, *ctx);
    std::vector<float> got(want.size() + 16, 12345.0f);
    std::vector<std::pair<std::string, double>> times;
    engine::RunControl control;
    control.op_times = &times;
    plan->run(input.data(), got.data(), control);
    for (size_t i = want.size(); i < got.size(); ++i)
        ASSERT_EQ(got[i], 12345.0f) << "write past the output";
    got.resize(want.size());
    const Comparison cmp = compare(got, want);
    EXPECT_TRUE(cmp.finite);
    EXPECT_LE(cmp.nmse, tc.max_nmse) << tc.name << "\n" << plan->describe();
    EXPECT_LE(cmp.max_abs, tc.max_abs) << tc.name;
    EXPECT_LE(plan->peak_bytes(), cuda->estimate_peak_bytes(g));
    EXPECT_EQ(times.size(), g.ops().size());

    // A second run, replaying the plan's CUDA graph (the first was eager: it asked for per-op
    // times), gives the same bits: no state left between runs, graph == eager launches.
    EXPECT_NE(plan->describe().find("execution: cuda graph"), std::string::npos)
        << plan->describe();
    std::vector<float> again(want.size());
    plan->run(input.data(), again.data(), {});
    EXPECT_EQ(again, got);
}

INSTANTIATE_TEST_SUITE_P(Ops,
                         CudaVsCpu,
                         ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                             std::string n;
                             for (char ch : param.param.name)
                                 n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                             return n + "_" + std::to_string(param.index);
                         });

// Runs without a GPU: every case's graph is valid and runs on the CPU backend, so a GPU run
// only has the CUDA side left to prove.
TEST(CudaCases, BuildAndRunOnTheCpuBackend) {
    auto cpu = engine::cpu::make_cpu_backend();
    auto ctx = cpu->create_context({2});
    for (const Case& tc : cases()) {
        Graph g;
        const ValueId x = g.input(tc.h, tc.w, tc.c);
        g.output(tc.build(g, x));
        const auto input = random_vector(static_cast<size_t>(tc.h) * tc.w * tc.c, 7);
        const engine::Value& out = g.value(g.output_value());
        std::vector<float> got(static_cast<size_t>(out.h) * out.w * out.c);
        cpu->compile(g, *ctx)->run(input.data(), got.data(), {});
        EXPECT_TRUE(compare(got, got).finite) << tc.name;
    }
}

// A plan built with the timed algorithm search (cudnnFindConvolutionForwardAlgorithmEx)
// computes what the heuristic plan computes: both within the case's bounds of the CPU backend
// and of each other (different algorithms round differently), and every cuDNN convolution
// reports the time of its chosen algorithm.
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
    for (const Case& tc : cases()) {
        if (tc.name.find("conv") == std::string::npos && tc.name.find("dense") == std::string::npos)
            continue;
        Graph g;
        const ValueId x = g.input(tc.h, tc.w, tc.c);
        g.output(tc.build(g, x));
        const auto input = random_vector(static_cast<size_t>(tc.h) * tc.w * tc.c, 7);
        const engine::Value& out = g.value(g.output_value());
        const size_t n = static_cast<size_t>(out.h) * out.w * out.c;
        std::vector<float> want(n), a(n), b(n);
        cpu->compile(g, *cpu_ctx)->run(input.data(), want.data(), {});
        auto hp = heuristic->compile(g, *h_ctx);
        auto tp = timed->compile(g, *t_ctx);
        hp->run(input.data(), a.data(), {});
        tp->run(input.data(), b.data(), {});
        const std::string desc = tp->describe();
        for (const Comparison& cmp : {compare(b, want), compare(b, a)}) {
            EXPECT_TRUE(cmp.finite) << tc.name;
            EXPECT_LE(cmp.nmse, tc.max_nmse) << tc.name << "\n" << desc;
            EXPECT_LE(cmp.max_abs, tc.max_abs) << tc.name;
        }
        EXPECT_LE(tp->peak_bytes(), timed->estimate_peak_bytes(g)) << tc.name;
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

}  // namespace
}  // namespace kiln::test
