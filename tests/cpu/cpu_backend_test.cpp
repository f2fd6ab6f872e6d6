// Every CPU op and convolution epilogue against the naive reference interpreter, in both
// buffer layouts (blocked: channels multiple of the block; NHWC otherwise), with views.
#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "tests/cpu/graph_cases.h"
#include "tests/cpu/reference_graph.h"

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
    double max_nmse = 1e-9;  // fp32 against a double-accumulating reference
};

void run_case(const Case& tc, engine::cpu::ConvAlgorithm algorithm, int block) {
    Graph g;
    const ValueId x = g.input(tc.h, tc.w, tc.c);
    g.output(tc.build(g, x));
    const auto input = random_vector(static_cast<size_t>(tc.h) * tc.w * tc.c, 7);
    const auto want = run_reference(g, input);

    engine::cpu::CpuBackendOptions options;
    options.conv_algorithm = algorithm;
    options.block = block;
    auto backend = engine::cpu::make_cpu_backend(options);
    auto context = backend->create_context({2});
    auto plan = backend->compile(g, *context);
    // Sentinel past the end catches stray writes.
    std::vector<float> got(want.size() + 16, 12345.0f);
    plan->run(input.data(), got.data(), {});
    for (size_t i = want.size(); i < got.size(); ++i)
        ASSERT_EQ(got[i], 12345.0f) << tc.name;
    got.resize(want.size());
    const Comparison cmp = compare(got, want);
    EXPECT_TRUE(cmp.finite) << tc.name;
    // Winograd F(4,3) rounds differently from direct summation: a wider bound.
    const double bound =
        algorithm == engine::cpu::ConvAlgorithm::AUTO ? tc.max_nmse * 100 : tc.max_nmse;
    EXPECT_LE(cmp.nmse, bound) << tc.name << " block " << block << " max_abs " << cmp.max_abs
                               << "\n"
                               << plan->describe();
    EXPECT_LE(plan->peak_bytes(), backend->estimate_peak_bytes(g)) << tc.name;
}

Epilogue lrelu() {
    Epilogue e;
    e.act = Activation::LEAKY_RELU;
    e.alpha = 0.2f;
    return e;
}

std::vector<Case> cases() {
    std::vector<Case> v;
    v.push_back({"conv3x3 3->32 (nhwc in, blocked out)", 9, 11, 3, [](Graph& g, ValueId x) {
                     return g.conv2d("c", x, random_conv(3, 32, 3, 1), {});
                 }});
    v.push_back({"conv3x3 32->32 lrelu", 12, 10, 3, [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 32, 3, 2), {});
                     return g.conv2d("b", a, random_conv(32, 32, 3, 3), lrelu());
                 }});
    v.push_back({"conv3x3 odd channels 3->8->27 relu/none", 7, 13, 3, [](Graph& g, ValueId x) {
                     Epilogue relu;
                     relu.act = Activation::RELU;
                     auto a = g.conv2d("a", x, random_conv(3, 8, 3, 4), relu);
                     return g.conv2d("b", a, random_conv(8, 27, 3, 5), {});
                 }});
    v.push_back({"conv1x1 and no bias", 6, 6, 3, [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 16, 1, 6, false), {});
                     return g.conv2d("b", a, random_conv(16, 3, 1, 7), {});
                 }});
    v.push_back({"prelu", 8, 8, 3, [](Graph& g, ValueId x) {
                     Epilogue p;
                     p.act = Activation::PRELU;
                     p.prelu_slope = random_vector(16, 8, 0.5f);
                     auto a = g.conv2d("a", x, random_conv(3, 16, 3, 9), p);
                     return g.conv2d("b", a, random_conv(16, 3, 3, 10), {});
                 }});
    for (int nf : {32, 8}) {  // 32: blocked slices; 8: NHWC views with channel strides
        const int gc = nf / 2;
        v.push_back(
            {"dense block nf=" + std::to_string(nf), 10, 9, 3, [nf, gc](Graph& g, ValueId x) {
                 ValueId buf = g.buffer(10, 9, nf + 2 * gc);
                 ValueId in =
                     g.conv2d("first", x, random_conv(3, nf, 3, 11), {}, g.channels(buf, 0, nf));
                 g.conv2d("c1", g.channels(buf, 0, nf), random_conv(nf, gc, 3, 12), lrelu(),
                          g.channels(buf, nf, gc));
                 g.conv2d("c2", g.channels(buf, 0, nf + gc), random_conv(nf + gc, gc, 3, 13),
                          lrelu(), g.channels(buf, nf + gc, gc));
                 Epilogue res;
                 res.adds.push_back({in, 0.2f});
                 res.adds.push_back({in, 0.5f});
                 auto out = g.conv2d("c3", buf, random_conv(nf + 2 * gc, nf, 3, 14), res);
                 return g.conv2d("last", out, random_conv(nf, 3, 3, 15), {});
             }});
    }
    v.push_back({"upsample nearest x2 (blocked) and x3 (nhwc)", 5, 7, 3, [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 16, 3, 16), {});
                     auto b = g.upsample_nearest(a, 2);
                     auto c = g.conv2d("b", b, random_conv(16, 5, 3, 17), {});
                     return g.upsample_nearest(c, 3);
                 }});
    v.push_back({"upsample bilinear x2 (blocked, nhwc)", 5, 6, 3, [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 16, 3, 18), {});
                     auto b = g.upsample_bilinear(a, 2);
                     return g.add(
                         g.upsample_bilinear(x, 4),
                         g.upsample_bilinear(g.conv2d("b", b, random_conv(16, 3, 3, 19), {}), 2),
                         0.5f);
                 }});
    v.push_back({"bicubic resize down 0.5, 0.75 and up (blocked, nhwc)", 12, 16, 3,
                 [](Graph& g, ValueId x) {
                     auto a = g.conv2d("a", x, random_conv(3, 16, 3, 21), {});
                     auto b = g.resize_bicubic(a, 6, 8);  // x0.5, blocked
                     auto c = g.conv2d("b", b, random_conv(16, 3, 3, 22), {});
                     auto d = g.resize_bicubic(c, 9, 12);          // x1.5
                     return g.add(d, g.resize_bicubic(x, 9, 12));  // x0.75 of the input
                 }});
    v.push_back({"pixel shuffle/unshuffle round trip", 8, 12, 3, [](Graph& g, ValueId x) {
                     auto a = g.pixel_unshuffle(x, 2);  // 12 channels
                     auto b = g.conv2d("a", a, random_conv(12, 48, 3, 20), {});
                     auto c = g.pixel_shuffle(b, 4);  // 3 channels, x2 size
                     return g.add(c, g.upsample_nearest(x, 2));
                 }});
    return v;
}

TEST(CpuBackend, OpsMatchReferenceDirect) {
    for (const Case& tc : cases()) {
        for (int block : {16, 8})
            run_case(tc, engine::cpu::ConvAlgorithm::DIRECT, block);
    }
}

TEST(CpuBackend, OpsMatchReferenceWinograd) {
    for (const Case& tc : cases())
        run_case(tc, engine::cpu::ConvAlgorithm::AUTO, 0);
}

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
