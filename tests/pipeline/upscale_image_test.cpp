// The image-level pipeline: gray, alpha and 16-bit images are processed as Real-ESRGAN does.
#include <gtest/gtest.h>

#include <limits>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/pipeline/upscale_image.h"
#include "weights/arch.h"
#include "weights/pth.h"

namespace kiln::test {
namespace {

struct Fixture {
    std::unique_ptr<engine::Model> model = engine::Model::create(weights::detect_architecture(
        weights::load_pth(std::string(KILN_TEST_DATA) + "/weights/srvgg_x4.pth")));
    std::unique_ptr<engine::Backend> backend = engine::cpu::make_cpu_backend();
    std::unique_ptr<engine::ExecutionContext> context = backend->create_context({2});
    engine::Upscaler upscaler{*model, *backend, *context};
};

image::Image pattern(int w, int h, int channels, int bit_depth) {
    image::Image img;
    img.width = w;
    img.height = h;
    img.channels = channels;
    img.bit_depth = bit_depth;
    img.samples.resize(img.sample_count());
    for (size_t i = 0; i < img.samples.size(); ++i) {
        img.samples[i] =
            static_cast<uint16_t>((i * 7919u) % static_cast<unsigned>(img.max_value()));
    }
    return img;
}

engine::UpscaleOptions whole() {
    engine::UpscaleOptions o;
    o.tile = 0;
    return o;
}

TEST(UpscaleImage, Quantize) {
    EXPECT_EQ(engine::quantize(-0.2f, 255), 0);
    EXPECT_EQ(engine::quantize(0.5f / 255.0f, 255), 1);  // floor(0.5 + 0.5)
    EXPECT_EQ(engine::quantize(0.49f / 255.0f, 255), 0);
    EXPECT_EQ(engine::quantize(1.3f, 255), 255);
    EXPECT_EQ(engine::quantize(1.0f, 65535), 65535);
    EXPECT_EQ(engine::quantize(std::numeric_limits<float>::quiet_NaN(), 255), 0);
}

TEST(UpscaleImage, RgbaUpscalesAlphaThroughTheModel) {
    Fixture f;
    const image::Image in = pattern(9, 7, 4, 8);
    const image::Image out = engine::upscale_image(f.upscaler, in, whole());
    ASSERT_EQ(out.channels, 4);
    ASSERT_EQ(out.width, 36);
    ASSERT_EQ(out.height, 28);
    // Alpha = gray of the model applied to the alpha plane replicated into RGB.
    const engine::FloatImage alpha = f.upscaler.run(engine::image_alpha_rgb(in), whole());
    const engine::FloatImage rgb = f.upscaler.run(engine::image_rgb(in), whole());
    for (size_t p = 0; p < static_cast<size_t>(out.width * out.height); ++p) {
        const float* a = alpha.data.data() + p * 3;
        EXPECT_EQ(out.samples[p * 4 + 3],
                  engine::quantize(0.299f * a[0] + 0.587f * a[1] + 0.114f * a[2], 255));
        EXPECT_EQ(out.samples[p * 4 + 1], engine::quantize(rgb.data[p * 3 + 1], 255));
    }
}

TEST(UpscaleImage, GrayStaysGrayAnd16BitStays16Bit) {
    Fixture f;
    const image::Image gray16 = pattern(6, 5, 1, 16);
    const image::Image out = engine::upscale_image(f.upscaler, gray16, whole());
    EXPECT_EQ(out.channels, 1);
    EXPECT_EQ(out.bit_depth, 16);
    const engine::FloatImage rgb = f.upscaler.run(engine::image_rgb(gray16), whole());
    for (size_t p = 0; p < out.samples.size(); ++p) {
        const float* v = rgb.data.data() + p * 3;
        EXPECT_EQ(out.samples[p],
                  engine::quantize(0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2], 65535));
    }
    const image::Image ga = engine::upscale_image(f.upscaler, pattern(4, 4, 2, 8), whole());
    EXPECT_EQ(ga.channels, 2);
}

TEST(UpscaleImage, ProgressCountsBothPassesAndCancelStops) {
    Fixture f;
    engine::UpscaleOptions tiled;
    tiled.tile = 8;
    tiled.tile_pad = 4;
    std::vector<std::pair<int, int>> seen;
    engine::UpscaleHooks hooks;
    hooks.on_tile = [&](int done, int total) { seen.emplace_back(done, total); };
    engine::upscale_image(f.upscaler, pattern(20, 20, 4, 8), tiled, hooks);
    ASSERT_FALSE(seen.empty());
    const int total = seen.back().second;
    EXPECT_EQ(seen.back().first, total);
    EXPECT_EQ(static_cast<int>(seen.size()), total);  // RGB tiles then alpha tiles
    EXPECT_EQ(total % 2, 0);

    std::atomic<bool> cancel{true};
    engine::UpscaleHooks cancelled;
    cancelled.cancel = &cancel;
    try {
        engine::upscale_image(f.upscaler, pattern(20, 20, 3, 8), tiled, cancelled);
        FAIL() << "cancelled upscale returned";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::CANCELLED);
    }
}

TEST(UpscaleImage, MemoryBudgetChoosesTilesOrRefuses) {
    Fixture f;
    engine::UpscaleOptions o;
    o.memory_budget = size_t{1} << 40;
    EXPECT_EQ(f.upscaler.choose_tile(300, 200, o), 0);  // fits whole
    const size_t whole_bytes = f.upscaler.estimate_peak_bytes(320, 220);
    o.memory_budget = whole_bytes / 3;
    const int tile = f.upscaler.choose_tile(300, 200, o);
    EXPECT_GT(tile, 0);
    o.memory_budget = 1024;  // nothing fits
    EXPECT_THROW(f.upscaler.choose_tile(300, 200, o), core::Error);
}

}  // namespace
}  // namespace kiln::test
