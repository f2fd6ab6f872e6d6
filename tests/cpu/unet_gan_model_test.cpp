// The UNet generators on the CPU backend with random weights: output sizes of the bordered
// networks, tiled runs of UpConv7 (local everywhere) against one tile, and each network's
// graph on the CPU backend against the reference interpreter.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <utility>

#include "engine/cpu/cpu_backend.h"
#include "engine/models/model.h"
#include "engine/pipeline/upscale_image.h"
#include "engine/pipeline/upscaler.h"
#include "tests/cpu/reference_graph.h"
#include "tests/ops/graph_cases.h"
#include "weights/unet_gan_layers.h"

namespace kiln::engine {
namespace {

using weights::GanLayer;
namespace test = kiln::test;

// He-scaled random weights, so activations keep their size through the network.
weights::DetectedModel random_model(const std::vector<GanLayer>& layers,
                                    weights::ArchConfig config,
                                    const std::string& arch,
                                    int scale) {
    weights::DetectedModel m;
    uint32_t seed = 1;
    for (const GanLayer& l : layers) {
        const auto shape = l.weight_shape();
        const size_t n = static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]);
        const float s = std::sqrt(2.0f / static_cast<float>(l.in * l.kernel * l.kernel));
        m.weights[l.key + ".weight"] = {weights::StorageDType::F32, shape,
                                        test::random_vector(n, seed++, s)};
        m.weights[l.key + ".bias"] = {
            weights::StorageDType::F32,
            {l.out},
            test::random_vector(static_cast<size_t>(l.out), seed++, 0.05f)};
    }
    m.config = config;
    m.arch_name = arch;
    m.scale = scale;
    return m;
}

std::unique_ptr<Model> upconv7() {
    return Model::create(
        random_model(weights::upconv7_layers({}), weights::UpConv7Config{}, "UpConv7", 2));
}

std::unique_ptr<Model> cunet(int scale) {
    weights::CUNetConfig c;
    c.scale = scale;
    return Model::create(random_model(weights::cunet_layers(c), c, "CUNet", scale));
}

FloatImage random_image(int h, int w) {
    FloatImage img(h, w, 3);
    img.data = test::random_vector(img.data.size(), 42, 0.5f);
    for (float& v : img.data)
        v += 0.5f;
    return img;
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
    const FloatImage img = random_image(37, 29);
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
        const FloatImage out = upscaler.run(random_image(13, 7), whole);
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

}  // namespace
}  // namespace kiln::engine
