// OmniSR on the CPU backend with random weights of small configurations: the whole graph
// against the reference interpreter, the estimate against the plan, and the published
// forward's padding (zeros to the window multiple, bottom and right, then cropped) through
// the upscaler, including images smaller than ESA's smallest window.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/models/model.h"
#include "engine/pipeline/upscaler.h"
#include "tests/cpu/reference_graph.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/random_gan_models.h"
#include "weights/arch.h"

namespace kiln::engine {
namespace {

namespace test = kiln::test;

// Random weights of every tensor of the configuration: weights scaled by fan-in, LayerNorm
// gains near 1, temperatures near 1, and position-bias tables of size 1.
weights::DetectedModel random_omnisr(const weights::OmniSRConfig& c) {
    weights::DetectedModel m;
    uint32_t seed = 1;
    for (const auto& [key, shape] : weights::omnisr_tensors(c)) {
        int64_t n = 1;
        for (int64_t d : shape)
            n *= d;
        std::vector<float> v;
        if (key.ends_with("norm.weight") || key.ends_with("temperature")) {
            v = test::random_vector(static_cast<size_t>(n), seed++, 0.3f);
            for (float& x : v)
                x += 1.0f;
        } else if (key.ends_with("rel_pos_bias.weight") || shape.size() == 1) {
            v = test::random_vector(static_cast<size_t>(n), seed++, 0.5f);
        } else {
            const int64_t fan_in = n / shape[0];
            v = test::random_vector(static_cast<size_t>(n), seed++,
                                    std::sqrt(3.0f / static_cast<float>(fan_in)));
        }
        m.weights[key] = {weights::StorageDType::F32, shape, std::move(v)};
    }
    m.config = c;
    m.arch_name = "OmniSR";
    m.scale = c.scale;
    return m;
}

weights::OmniSRConfig small_config(int window, bool pe, int scale) {
    weights::OmniSRConfig c;
    c.num_feat = 16;
    c.res_num = 2;
    c.block_num = 1;
    c.window_size = window;
    c.pe = pe;
    c.scale = scale;
    return c;
}

TEST(OmniSRModel, DetectsItsOwnTensors) {
    const weights::OmniSRConfig c = small_config(4, true, 3);
    const weights::DetectedModel m = weights::detect_architecture(random_omnisr(c).weights);
    ASSERT_EQ(m.arch_name, "OmniSR");
    const auto& got = std::get<weights::OmniSRConfig>(m.config);
    EXPECT_EQ(got.num_feat, 16);
    EXPECT_EQ(got.res_num, 2);
    EXPECT_EQ(got.block_num, 1);
    EXPECT_EQ(got.window_size, 4);
    EXPECT_TRUE(got.pe);
    EXPECT_EQ(m.scale, 3);
}

// The whole network on the CPU backend against the double-accumulating interpreter.
TEST(OmniSRModel, GraphMatchesTheReference) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    for (const auto& [c, h, w] :
         {std::tuple{small_config(4, true, 2), 16, 24}, {small_config(8, false, 4), 16, 16}}) {
        const auto model = Model::create(random_omnisr(c));
        const Graph g = model->build_graph(h, w);
        const Value& in = g.value(g.input_value());
        const std::vector<float> x =
            test::random_vector(static_cast<size_t>(in.h) * in.w * in.c, 5, 0.5f);
        const std::vector<float> want = test::run_reference(g, x);
        auto plan = backend->compile(g, *context);
        std::vector<float> got(want.size());
        plan->run(x.data(), got.data(), {});
        const test::Comparison cmp = test::compare(got, want);
        EXPECT_TRUE(cmp.finite);
        EXPECT_LT(cmp.nmse, 1e-9) << "window " << c.window_size;
        EXPECT_EQ(got.size(), static_cast<size_t>(h * c.scale) * (w * c.scale) * 3);
    }
}

TEST(OmniSRModel, EstimateBoundsThePlan) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    weights::OmniSRConfig c = small_config(8, true, 4);
    c.num_feat = 64;
    const auto model = Model::create(random_omnisr(c));
    const Graph g = model->build_graph(64, 48);
    auto plan = backend->compile(g, *context);
    EXPECT_GE(backend->estimate_peak_bytes(g), plan->peak_bytes());
}

// The published forward: pad with zeros to the window multiple (bottom, right), run, crop.
// The upscaler does exactly that, and no Real-ESRGAN pre-pad, whatever the options say.
TEST(OmniSRModel, UpscalerPadsWithZerosToTheWindow) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    const weights::OmniSRConfig c = small_config(4, true, 2);
    const auto model = Model::create(random_omnisr(c));
    EXPECT_FALSE(model->takes_prepad());
    const FloatImage img = test::random_rgb(17, 22);  // padded to 20 x 24
    UpscaleOptions whole;
    whole.tile = 0;
    whole.prepad = 10;
    Upscaler upscaler(*model, *backend, *context);
    const FloatImage got = upscaler.run(img, whole);
    ASSERT_EQ(got.h, 34);
    ASSERT_EQ(got.w, 44);

    FloatImage padded(20, 24, 3);
    for (int y = 0; y < img.h; ++y)
        std::copy_n(img.pixel(y, 0), static_cast<size_t>(img.w) * 3, padded.pixel(y, 0));
    auto plan = backend->compile(model->build_graph(20, 24), *context);
    FloatImage full(40, 48, 3);
    plan->run(padded.data.data(), full.data.data(), {});
    const FloatImage want = crop(full, 0, 0, 34, 44);
    const test::Comparison cmp = test::compare(got.data, want.data);
    EXPECT_EQ(cmp.max_abs, 0.0);
}

// ESA pools a 7x7 window of a half-size map: smaller images are padded (with zeros) to 16.
TEST(OmniSRModel, SmallImagesPadToTheSmallestWindow) {
    auto backend = cpu::make_cpu_backend();
    auto context = backend->create_context({});
    const auto model = Model::create(random_omnisr(small_config(8, true, 4)));
    EXPECT_EQ(model->min_window(), 15);
    try {
        model->build_graph(8, 16);
        ADD_FAILURE() << "an 8-pixel window was accepted";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("at least 15"), std::string::npos) << e.what();
    }
    Upscaler upscaler(*model, *backend, *context);
    UpscaleOptions whole;
    whole.tile = 0;
    const FloatImage out = upscaler.run(test::random_rgb(5, 9), whole);
    EXPECT_EQ(out.h, 20);
    EXPECT_EQ(out.w, 36);
    for (float v : out.data)
        ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace kiln::engine
