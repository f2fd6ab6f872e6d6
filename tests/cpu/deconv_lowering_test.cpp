// Graph::deconv2d builds a transposed convolution from a convolution, a pixel shuffle and a
// crop (engine/graph/deconv_lowering.h). Checked here against PyTorch's ConvTranspose2d
// written out directly (every input pixel scatters weight[i][o] * x into the output pixels
// (iy s + ky - p, ix s + kx - p) that exist), in double, for every geometry the UNet
// generators use and a few they do not; both through the reference interpreter (the weight
// transform alone) and on the CPU backend.
#include <gtest/gtest.h>

#include <cstdio>

#include "engine/cpu/cpu_backend.h"
#include "engine/graph/deconv_lowering.h"
#include "tests/cpu/reference_graph.h"
#include "tests/ops/graph_cases.h"

namespace kiln::test {
namespace {

struct Geometry {
    int in, out, k, s, p, h, w;
};

std::vector<double> transposed_conv(const std::vector<float>& x,
                                    const engine::ConvWeights& c,
                                    const Geometry& g,
                                    int oh,
                                    int ow) {
    std::vector<double> y(static_cast<size_t>(oh) * ow * g.out, 0.0);
    for (int o = 0; o < g.out; ++o)
        for (size_t px = 0; px < static_cast<size_t>(oh) * ow; ++px)
            y[px * g.out + o] = c.bias ? (*c.bias)[static_cast<size_t>(o)] : 0.0;
    const auto& w = *c.weight;  // [in][out][k][k]
    for (int iy = 0; iy < g.h; ++iy)
        for (int ix = 0; ix < g.w; ++ix)
            for (int i = 0; i < g.in; ++i) {
                const double v = x[(static_cast<size_t>(iy) * g.w + ix) * g.in + i];
                for (int ky = 0; ky < g.k; ++ky)
                    for (int kx = 0; kx < g.k; ++kx) {
                        const int oy = iy * g.s + ky - g.p, ox = ix * g.s + kx - g.p;
                        if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
                            continue;
                        for (int o = 0; o < g.out; ++o)
                            y[(static_cast<size_t>(oy) * ow + ox) * g.out + o] +=
                                v * w[((static_cast<size_t>(i) * g.out + o) * g.k + ky) * g.k + kx];
                    }
            }
    return y;
}

TEST(DeconvLowering, MatchesConvTranspose2d) {
    const Geometry geometries[] = {
        {64, 64, 2, 2, 0, 5, 7},  // CUNet's ups
        {64, 3, 4, 2, 3, 6, 5},   // CUNet's / UpConv7's 2x bottom
        {32, 3, 5, 3, 2, 4, 6},   // Real-CUGAN 3x's bottom
        {5, 7, 3, 1, 1, 4, 3},    // stride 1: a (flipped) convolution
        {6, 4, 3, 2, 1, 5, 5},    // odd kernel, stride 2
        {3, 5, 4, 4, 0, 3, 2},    // k = s: pure sub-pixel
    };
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({2});
    uint32_t seed = 10;
    for (const Geometry& g : geometries) {
        engine::ConvWeights c = random_conv(g.in, g.out, g.k, seed++);
        c.stride = g.s;
        c.pad = g.p;
        const int oh = engine::deconv_output_size(g.h, c);
        const int ow = engine::deconv_output_size(g.w, c);
        const auto x = random_vector(static_cast<size_t>(g.h) * g.w * g.in, seed++);
        const std::vector<double> want = transposed_conv(x, c, g, oh, ow);
        std::vector<float> want_f(want.begin(), want.end());

        engine::Graph graph;
        const engine::ValueId in = graph.input(g.h, g.w, g.in);
        graph.output(graph.deconv2d("d", in, c, {}));
        const engine::Value& out = graph.value(graph.output_value());
        ASSERT_EQ(out.h, oh);
        ASSERT_EQ(out.w, ow);
        ASSERT_EQ(out.c, g.out);
        char where[48];
        std::snprintf(where, sizeof(where), "k%d s%d p%d", g.k, g.s, g.p);
        // The weight transform and geometry, in double.
        EXPECT_LT(compare(run_reference(graph, x), want_f).nmse, 1e-12) << where;
        // On the CPU backend (oneDNN convolution, shuffle, crop).
        std::vector<float> got(want.size());
        backend->compile(graph, *context)->run(x.data(), got.data(), {});
        const Comparison cmp = compare(got, want_f);
        EXPECT_LT(cmp.nmse, 1e-9) << where;
        EXPECT_LT(cmp.max_abs, 1e-4) << where;
    }
}

}  // namespace
}  // namespace kiln::test
