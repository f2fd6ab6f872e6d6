// The UNet generators on the CPU backend with random weights: output sizes of the bordered
// networks, tiled runs of UpConv7 (local everywhere) against one tile, and each network's
// graph on the CPU backend against the reference interpreter; Real-CUGAN's syncgap (probe
// graphs, fed means, tiled runs sharing them, the run's memory estimate).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/models/model.h"
#include "engine/pipeline/upscale_image.h"
#include "engine/pipeline/upscaler.h"
#include "tests/cpu/reference_graph.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/random_gan_models.h"

namespace kiln::engine {
namespace {

namespace test = kiln::test;

std::unique_ptr<Model> upconv7() {
    return test::random_upconv7();
}

std::unique_ptr<Model> cunet(
    int scale,
    weights::CUNetConfig::Program program = weights::CUNetConfig::Program::REAL_CUGAN) {
    return test::random_cunet(scale, program);
}

TEST(UnetGanModels, BordersAndMultiples) {
    EXPECT_EQ(upconv7()->border(), 7);
    EXPECT_EQ(upconv7()->size_multiple(), 1);
    EXPECT_EQ(cunet(2)->border(), 18);
    EXPECT_EQ(cunet(2)->size_multiple(), 2);
    EXPECT_EQ(cunet(1)->border(), 28);
    EXPECT_EQ(cunet(1)->size_multiple(), 4);
    EXPECT_EQ(cunet(3)->border(), 14);
    EXPECT_EQ(cunet(3)->size_multiple(), 4);
    EXPECT_EQ(cunet(4)->border(), 19);
    EXPECT_EQ(cunet(4)->size_multiple(), 2);
    // The graph of an h x w window reads the border around it and gives s h x s w.
    for (const auto& [model, h, w] : {std::tuple{upconv7(), 5, 9},
                                      {cunet(2), 6, 4},
                                      {cunet(1), 8, 12},
                                      {cunet(3), 8, 4},
                                      {cunet(4), 6, 2}}) {
        const Graph g = model->build_graph(h, w);
        const Value& in = g.value(g.input_value());
        const Value& out = g.value(g.output_value());
        EXPECT_EQ(in.h, h + 2 * model->border()) << model->arch();
        EXPECT_EQ(in.w, w + 2 * model->border()) << model->arch();
        EXPECT_EQ(out.h, h * model->scale()) << model->arch();
        EXPECT_EQ(out.w, w * model->scale()) << model->arch();
    }
}

// The whole network on the CPU backend against the double-accumulating interpreter.
TEST(UnetGanModels, GraphsMatchTheReference) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    for (const auto& [model, h, w] : {std::tuple{upconv7(), 6, 5},
                                      {cunet(2), 4, 6},
                                      {cunet(1), 4, 8},
                                      {cunet(3), 4, 4},
                                      {cunet(4), 2, 4}}) {
        const Graph g = model->build_graph(h, w);
        const Value& in = g.value(g.input_value());
        const std::vector<float> x =
            test::random_vector(static_cast<size_t>(in.h) * in.w * in.c, 5, 0.5f);
        const std::vector<float> want = test::run_reference(g, x);
        auto plan = backend->compile(g, *context);
        std::vector<float> got(want.size());
        plan->run(x.data(), got.data(), {});
        const test::Comparison c = test::compare(got, want);
        EXPECT_TRUE(c.finite) << model->arch();
        EXPECT_LT(c.nmse, 1e-9) << model->arch() << " scale " << model->scale();
    }
}

// Admission and tile choice trust the estimate: it must bound what the plan holds.
TEST(UnetGanModels, EstimateBoundsThePlan) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    for (const auto& model : {upconv7(), cunet(2), cunet(1), cunet(3), cunet(4)}) {
        const Graph g = model->build_graph(64, 48);
        auto plan = backend->compile(g, *context);
        EXPECT_GE(backend->estimate_peak_bytes(g), plan->peak_bytes()) << model->arch();
    }
}

// UpConv7 sees only its 7-pixel border: tiles (each window read with its border from the
// image) give what one tile gives.
TEST(UnetGanModels, TiledUpConv7MatchesOneTile) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    const auto model = upconv7();
    Upscaler upscaler(*model, *backend, *context);
    const FloatImage img = test::random_rgb(37, 29);
    UpscaleOptions whole;
    whole.tile = 0;
    UpscaleOptions tiled = whole;
    tiled.tile = 12;
    tiled.tile_pad = 3;
    const FloatImage a = upscaler.run(img, whole);
    const FloatImage b = upscaler.run(img, tiled);
    ASSERT_EQ(a.h, 74);
    ASSERT_EQ(a.w, 58);
    ASSERT_EQ(b.data.size(), a.data.size());
    const test::Comparison c = test::compare(b.data, a.data);
    EXPECT_LT(c.max_abs, 1e-5);
}

// Odd sizes pad to the CUNet's multiple and come back cropped; the edge pixels see the
// replicated image border, as waifu2x-ncnn-vulkan pads.
TEST(UnetGanModels, CUNetOddSizesComeBackScaled) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    for (const int scale : {1, 2, 3, 4}) {
        const auto model = cunet(scale);
        Upscaler upscaler(*model, *backend, *context);
        UpscaleOptions whole;
        whole.tile = 0;
        const FloatImage out = upscaler.run(test::random_rgb(13, 7), whole);
        EXPECT_EQ(out.h, 13 * scale);
        EXPECT_EQ(out.w, 7 * scale);
        for (float v : out.data)
            ASSERT_TRUE(std::isfinite(v));
    }
}

// waifu2x's and Real-CUGAN's programs resize alpha bicubically (ncnn's Interp) instead of
// running it through the network: RGB from the model, alpha from the resize.
TEST(UnetGanModels, AlphaIsResizedBicubically) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    const auto model = upconv7();
    EXPECT_EQ(model->alpha_rule(), AlphaRule::BICUBIC);
    Upscaler upscaler(*model, *backend, *context);
    image::Image in;
    in.width = 11;
    in.height = 9;
    in.channels = 4;
    in.bit_depth = 8;
    in.samples.resize(in.sample_count());
    for (size_t i = 0; i < in.samples.size(); ++i)
        in.samples[i] = static_cast<uint16_t>((i * 7919u) % 255u);
    UpscaleOptions whole;
    whole.tile = 0;
    const image::Image out = upscale_image(upscaler, in, whole);
    ASSERT_EQ(out.channels, 4);
    ASSERT_EQ(out.width, 22);
    ASSERT_EQ(out.height, 18);
    const FloatImage alpha = resize_bicubic(image_alpha_plane(in), 18, 22);
    const FloatImage rgb = upscaler.run(image_rgb(in), whole);
    for (size_t p = 0; p < static_cast<size_t>(out.width * out.height); ++p) {
        ASSERT_EQ(out.samples[p * 4 + 3], quantize(alpha.data[p], 255)) << p;
        ASSERT_EQ(out.samples[p * 4], quantize(rgb.data[p * 3], 255)) << p;
    }
}

// The pipeline's bicubic resize is the RESIZE_BICUBIC op's arithmetic, value for value.
TEST(UnetGanModels, AlphaResizeIsTheBicubicOp) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({1});
    FloatImage plane(9, 11, 1);
    plane.data = test::random_vector(plane.data.size(), 3, 0.5f);
    for (const auto& [h, w] : {std::pair{18, 22}, {27, 33}, {9, 11}}) {
        Graph g;
        g.output(g.resize_bicubic(g.input(9, 11, 1), h, w));
        auto plan = backend->compile(g, *context);
        std::vector<float> want(static_cast<size_t>(h) * w);
        plan->run(plane.data.data(), want.data(), {});
        EXPECT_EQ(resize_bicubic(plane, h, w).data, want) << h << "x" << w;
    }
    // Scale 1 (CUNet's noise-only models) leaves alpha as it is.
    EXPECT_EQ(resize_bicubic(plane, 9, 11).data, plane.data);
}

// The channel counts of the SE blocks' means: the fed inputs of a window's graph.
std::vector<int> mean_channels(const Model& model, int h, int w) {
    const Graph g = model.build_graph(h, w, SharedMeans{model.shared_se_blocks(), -1});
    std::vector<int> c;
    for (size_t i = 1; i < g.input_values().size(); ++i)
        c.push_back(g.value(g.input_values()[i]).c);
    return c;
}

std::vector<float> run_fed(Backend& backend,
                           ExecutionContext& context,
                           const Graph& g,
                           const std::vector<float>& x,
                           const std::vector<std::vector<float>>& means) {
    std::vector<const float*> inputs{x.data()};
    for (const auto& m : means)
        inputs.push_back(m.data());
    const Value& out = g.value(g.output_value());
    std::vector<float> y(static_cast<size_t>(out.h) * out.w * out.c);
    backend.compile(g, context)->run_batch(inputs, y.data(), 1, {});
    return y;
}

// Real-CUGAN's syncgap graphs: a probe gives the means the window's own graph computes, and
// feeding them back gives that graph's output; a probe for one block runs only that far.
TEST(UnetGanModels, ProbedMeansFedBackReproduceTheWindow) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    for (const int scale : {2, 3, 4}) {
        const auto model = cunet(scale);
        ASSERT_EQ(model->shared_se_blocks(), 4);
        const int h = 8, w = 12;
        const Graph plain = model->build_graph(h, w);
        const Value& in = plain.value(plain.input_value());
        const std::vector<float> x =
            test::random_vector(static_cast<size_t>(in.h) * in.w * in.c, 9, 0.5f);
        const std::vector<float> all =
            run_fed(*backend, *context, model->build_graph(h, w, SharedMeans{0, 3}), x, {});
        const std::vector<int> channels = mean_channels(*model, h, w);
        ASSERT_EQ(channels.size(), 4u);
        std::vector<std::vector<float>> means;
        size_t at = 0;
        for (const int c : channels) {
            means.emplace_back(all.begin() + static_cast<ptrdiff_t>(at),
                               all.begin() + static_cast<ptrdiff_t>(at + static_cast<size_t>(c)));
            at += static_cast<size_t>(c);
        }
        ASSERT_EQ(at, all.size());
        // Block by block (syncgap 1's probes): block k fed the k before it gives the same mean.
        for (int k = 0; k < 4; ++k) {
            const std::vector<std::vector<float>> before(means.begin(), means.begin() + k);
            const Graph probe = model->build_graph(h, w, SharedMeans{k, k});
            EXPECT_LT(probe.ops().size(), plain.ops().size());
            const test::Comparison c =
                test::compare(run_fed(*backend, *context, probe, x, before), means[k]);
            EXPECT_LT(c.max_abs, 1e-5) << "scale " << scale << " block " << k;
        }
        // Block 0 is unet1's: its probe holds none of unet2.
        const Graph first = model->build_graph(h, w, SharedMeans{0, 0});
        for (const Op& op : first.ops())
            EXPECT_EQ(op.name.find("unet2"), std::string::npos) << op.name;
        const std::vector<float> want = run_fed(*backend, *context, plain, x, {});
        const test::Comparison c = test::compare(
            run_fed(*backend, *context, model->build_graph(h, w, SharedMeans{4, -1}), x, means),
            want);
        EXPECT_LT(c.max_abs, 1e-5) << "scale " << scale;
    }
}

// syncgap over a tiled run: one tile is left alone; several tiles run probe passes first
// (counted in the progress) and come out closer to the one-tile image than tiles that each
// keep their own means; waifu2x's CUNet shares nothing.
TEST(UnetGanModels, SyncgapSharesMeansAcrossTiles) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    const auto model = cunet(2);
    Upscaler upscaler(*model, *backend, *context);
    const FloatImage img = test::random_rgb(40, 36);
    UpscaleOptions whole;
    whole.tile = 0;
    const FloatImage one = upscaler.run(img, whole);
    whole.syncgap = 0;
    EXPECT_EQ(upscaler.run(img, whole).data, one.data);

    UpscaleOptions tiled;
    tiled.tile = 12;
    tiled.tile_pad = 4;
    double error[3] = {};
    for (const int mode : {0, 1, 2}) {
        tiled.syncgap = mode;
        int last_total = 0, calls = 0;
        UpscaleHooks hooks;
        hooks.on_tile = [&](int done, int total) {
            EXPECT_EQ(done, ++calls);
            last_total = total;
        };
        const FloatImage out = upscaler.run(img, tiled, hooks);
        const int passes = mode == 0 ? 1 : mode == 1 ? 5 : 2;
        EXPECT_EQ(last_total, 4 * 3 * passes) << mode;  // 40 x 36: 4 x 3 tiles
        EXPECT_EQ(calls, last_total);
        error[mode] = test::compare(out.data, one.data).nmse;
    }
    EXPECT_GT(error[0], 0.0);
    EXPECT_LT(error[1], error[0] / 4);
    EXPECT_LT(error[2], error[0]);

    tiled.syncgap = 3;
    EXPECT_THROW(upscaler.run(img, tiled), core::Error);

    const auto waifu2x = cunet(2, weights::CUNetConfig::Program::WAIFU2X);
    EXPECT_EQ(waifu2x->shared_se_blocks(), 0);
    Upscaler plain(*waifu2x, *backend, *context);
    tiled.syncgap = 0;
    const FloatImage own = plain.run(img, tiled);
    tiled.syncgap = 1;
    EXPECT_EQ(plain.run(img, tiled).data, own.data);
}

// A tiled syncgap run holds its probe plan beside the tile's plan: admission counts both.
TEST(UnetGanModels, RunEstimateCountsTheProbe) {
    auto backend = cpu::make_cpu_backend();
    UpscaleOptions options;
    options.tile_pad = 4;
    for (const int mode : {0, 1}) {
        options.syncgap = mode;
        const auto model = cunet(2);
        const WindowShape window = largest_window(*model, 60, 60, 16, options);
        const size_t one =
            backend->estimate_peak_bytes(model->build_graph(window.height, window.width));
        const size_t probe = backend->estimate_peak_bytes(
            model->build_graph(window.height, window.width, SharedMeans{0, 3}));
        EXPECT_LT(probe, one);
        EXPECT_EQ(estimate_run_bytes(*model, *backend, 60, 60, 16, options),
                  mode == 0 ? one : one + probe);
        // One tile, or a model that shares nothing: the window's plan alone.
        EXPECT_EQ(estimate_run_bytes(*model, *backend, 60, 60, 0, options),
                  backend->estimate_peak_bytes(model->build_graph(60, 60)));
        const auto waifu2x = cunet(2, weights::CUNetConfig::Program::WAIFU2X);
        EXPECT_EQ(estimate_run_bytes(*waifu2x, *backend, 60, 60, 16, options), one);
    }
}

}  // namespace
}  // namespace kiln::engine
