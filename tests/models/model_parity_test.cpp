// Tiny RRDBNet and SRVGGNetCompact state dicts saved by PyTorch (tools/make_weight_fixtures.py),
// run by kiln and compared with the output PyTorch computed for the same input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/cpu/cpu_backend.h"
#include "engine/models/model.h"
#include "engine/pipeline/upscaler.h"
#include "image/npy.h"
#include "weights/arch.h"
#include "weights/pth.h"

namespace kiln::test {
namespace {

const std::string kData = KILN_TEST_DATA;

std::unique_ptr<engine::Model> load_model(const std::string& relative) {
    return engine::Model::create(
        weights::detect_architecture(weights::load_pth(kData + "/" + relative)));
}

// A deterministic RGB image with values spread over [0, 1).
engine::FloatImage pattern_image(int h, int w) {
    engine::FloatImage img(h, w, 3);
    for (size_t i = 0; i < img.data.size(); ++i) {
        img.data[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f;
    }
    return img;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::abs(double{a[i]} - b[i]));
    return m;
}

TEST(ModelParity, TinyModelsMatchPyTorch) {
    std::ifstream file(kData + "/models/manifest.json");
    ASSERT_TRUE(file) << "missing tests/data/models/manifest.json";
    const auto manifest = nlohmann::json::parse(file);
    const auto input = image::read_npy(kData + "/models/" + manifest["input"].get<std::string>());
    const int h = static_cast<int>(input.shape[1]);
    const int w = static_cast<int>(input.shape[2]);
    const std::vector<float> x = input.as_f32();
    int checked = 0;
    for (const auto& [weights_file, entry] : manifest["outputs"].items()) {
        const auto expected =
            image::read_npy(kData + "/models/" + entry["output"].get<std::string>()).as_f32();
        auto model = load_model(weights_file);
        EXPECT_EQ(model->scale(), entry["scale"].get<int>()) << weights_file;
        for (auto algorithm :
             {engine::cpu::ConvAlgorithm::DIRECT, engine::cpu::ConvAlgorithm::AUTO}) {
            engine::cpu::CpuBackendOptions options;
            options.conv_algorithm = algorithm;
            auto backend = engine::cpu::make_cpu_backend(options);
            auto context = backend->create_context({2});
            auto plan = backend->compile(model->build_graph(h, w), *context);
            std::vector<float> y(expected.size());
            plan->run(x.data(), y.data(), {});
            const double diff = max_abs_diff(y, expected);
            std::printf("%-32s %-6s max |kiln - torch| = %.3g\n", weights_file.c_str(),
                        algorithm == engine::cpu::ConvAlgorithm::DIRECT ? "direct" : "auto", diff);
            EXPECT_LE(diff, 1e-5) << weights_file;
        }
        ++checked;
    }
    EXPECT_EQ(checked, 5);
}

// Tiles keep only their cores, so with context at least the receptive field the result
// is exactly the untiled one: SRVGG (num_conv 2: four 3x3 convs, radius 4) with tile_pad 8.
TEST(ModelParity, TiledEqualsUntiledWithinReceptiveField) {
    auto model = load_model("weights/srvgg_x4.pth");
    engine::cpu::CpuBackendOptions options;
    options.conv_algorithm = engine::cpu::ConvAlgorithm::DIRECT;
    auto backend = engine::cpu::make_cpu_backend(options);
    auto context = backend->create_context({2});
    engine::Upscaler upscaler(*model, *backend, *context);
    const engine::FloatImage img = pattern_image(37, 29);
    engine::UpscaleOptions whole;
    whole.tile = 0;
    engine::UpscaleOptions tiled;
    tiled.tile = 8;
    tiled.tile_pad = 8;
    int tiles = 0;
    engine::UpscaleHooks hooks;
    hooks.on_tile = [&](int, int total) { tiles = total; };
    const auto a = upscaler.run(img, whole);
    const auto b = upscaler.run(img, tiled, hooks);
    EXPECT_GT(tiles, 4);
    EXPECT_EQ(max_abs_diff(a.data, b.data), 0.0);
}

// RRDBNet's receptive field (here 2 blocks, 34 convs) is wider than the tile context, so tiles
// may differ from the untiled run by what lies beyond it; the figure is printed and bounded.
TEST(ModelParity, TiledRRDBNetCloseToUntiled) {
    auto model = load_model("weights/rrdb_x4_basicsr.pth");
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({2});
    engine::Upscaler upscaler(*model, *backend, *context);
    const engine::FloatImage img = pattern_image(40, 36);
    engine::UpscaleOptions whole;
    whole.tile = 0;
    engine::UpscaleOptions tiled;
    tiled.tile = 16;
    tiled.tile_pad = 12;
    const double diff = max_abs_diff(upscaler.run(img, whole).data, upscaler.run(img, tiled).data);
    std::printf("tiny RRDBNet: max |tiled - untiled| = %.3g\n", diff);
    EXPECT_LT(diff, 1e-3);
}

}  // namespace
}  // namespace kiln::test
