// waifu2x UpConv7 / CUNet and Real-CUGAN detection: state dicts in the canonical naming, ncnn
// graphs written here (the official files' layer structure, random weights), refusals naming
// the layer, and the official files themselves once scripts/fetch-models.sh has run.
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "tests/weights/test_support.h"
#include "weights/arch.h"
#include "weights/ncnn.h"
#include "weights/ncnn_import.h"
#include "weights/registry.h"
#include "weights/unet_gan_layers.h"

namespace kiln::weights {
namespace {

using test::expect_error;
using test::real_model;

int64_t numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

StateDict state_dict_of(const std::vector<GanLayer>& layers) {
    StateDict sd;
    for (const GanLayer& l : layers) {
        const std::vector<int64_t> shape = l.weight_shape();
        sd[l.key + ".weight"] = {StorageDType::F32, shape,
                                 std::vector<float>(static_cast<size_t>(numel(shape)), 0.5f)};
        sd[l.key + ".bias"] = {StorageDType::F32, {l.out}, std::vector<float>(l.out, 0.25f)};
    }
    return sd;
}

TEST(UnetGanDetect, UpConv7FromCanonicalKeys) {
    const DetectedModel m = detect_architecture(state_dict_of(upconv7_layers({})));
    EXPECT_EQ(m.arch_name, "UpConv7");
    EXPECT_EQ(m.scale, 2);
    EXPECT_EQ(m.weights.size(), 14u);
}

TEST(UnetGanDetect, CUNetScaleComesFromUnet1Bottom) {
    for (const int scale : {1, 2, 3, 4}) {
        CUNetConfig c;
        c.scale = scale;
        const DetectedModel m = detect_architecture(state_dict_of(cunet_layers(c)));
        EXPECT_EQ(m.arch_name, "CUNet");
        EXPECT_EQ(m.scale, scale);
        EXPECT_EQ(std::get<CUNetConfig>(m.config).scale, scale);
    }
}

TEST(UnetGanDetect, WrongShapeOrExtraTensorIsRefused) {
    StateDict sd = state_dict_of(cunet_layers({}));
    sd["unet2.conv3.seblock.conv1.weight"].shape = {16, 128, 3, 3};
    expect_error([&] { detect_architecture(sd); }, core::ErrorCode::BAD_FILE,
                 {"unet2.conv3.seblock.conv1.weight", "[16, 128, 1, 1]"});
    sd = state_dict_of(upconv7_layers({}));
    sd["net.14.weight"] = {StorageDType::F32, {1}, {0.0f}};
    expect_error([&] { detect_architecture(sd); }, core::ErrorCode::BAD_FILE, {"UpConv7", "15"});
}

// The ncnn text of a table's network in the official files' form: fused activations (9=),
// InnerProduct for the squeeze-excitation layers, and a weight blob per layer (fp32 tag 0).
struct NcnnText {
    std::string param;
    std::vector<uint8_t> bin;
};

void put_floats(std::vector<uint8_t>& bin, size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-0.1f, 0.1f);
    for (size_t i = 0; i < n; ++i) {
        const float v = dist(rng);
        uint8_t b[4];
        std::memcpy(b, &v, 4);
        bin.insert(bin.end(), b, b + 4);
    }
}

NcnnText ncnn_of(const std::vector<GanLayer>& layers, int poolings) {
    // Built with a stream: GCC 12 warns (-Wrestrict, a known false positive) on
    // "literal" + std::to_string(...).
    NcnnText t;
    std::mt19937 rng(3);
    std::ostringstream body;
    body << "Input in 0 1 b0\n";
    for (size_t i = 0; i < layers.size(); ++i) {
        const GanLayer& l = layers[i];
        const int act = l.act == GanLayer::Act::NONE         ? 0
                        : l.act == GanLayer::Act::RELU       ? 1
                        : l.act == GanLayer::Act::LEAKY_RELU ? 2
                                                             : 4;
        const int64_t size = numel(l.weight_shape());
        if (l.kind == GanLayer::Kind::LINEAR) {
            body << "InnerProduct l" << i << " 1 1 b" << i << " b" << i + 1 << " 0=" << l.out
                 << " 1=1 2=" << size;
        } else {
            body << (l.kind == GanLayer::Kind::CONV ? "Convolution" : "Deconvolution") << " l" << i
                 << " 1 1 b" << i << " b" << i + 1 << " 0=" << l.out << " 1=" << l.kernel
                 << " 3=" << l.stride << " 4=" << l.pad << " 5=1 6=" << size;
        }
        body << " 9=" << act << (act == 2 ? " -23310=1,0.1" : "") << "\n";
        const uint8_t fp32_tag[4] = {0, 0, 0, 0};
        t.bin.insert(t.bin.end(), fp32_tag, fp32_tag + 4);
        put_floats(t.bin, static_cast<size_t>(size), rng);
        put_floats(t.bin, static_cast<size_t>(l.out), rng);
    }
    // Real-CUGAN 4x ends in a pixel shuffle (its conv_final feeds it).
    const bool shuffle = layers.back().key == "conv_final";
    if (shuffle)
        body << "PixelShuffle ps 1 1 b" << layers.size() << " out 0=2\n";
    for (int p = 0; p < poolings; ++p) {
        body << "Pooling p" << p << " 1 1 ";
        if (p == 0)
            body << "b" << layers.size();
        else
            body << "q" << p - 1;
        body << " q" << p << " 0=1 4=1\n";
    }
    const size_t count = 1 + layers.size() + static_cast<size_t>(poolings) + (shuffle ? 1 : 0);
    std::ostringstream param;
    param << "7767517\n" << count << " " << count << "\n" << body.str();
    t.param = param.str();
    return t;
}

// s with the first `from` at or after `at` replaced by `to` (which must be there).
std::string replaced(const std::string& s,
                     const std::string& from,
                     const std::string& to,
                     size_t at = 0) {
    const size_t i = s.find(from, at);
    EXPECT_NE(i, std::string::npos) << from;
    if (i == std::string::npos)
        return s;
    return s.substr(0, i) + to + s.substr(i + from.size());
}

DetectedModel import_text(const NcnnText& t) {
    NcnnGraph g = parse_ncnn_param(t.param, "test.param");
    read_ncnn_weights(g, t.bin, "test.bin");
    return import_ncnn(g);
}

TEST(UnetGanNcnn, UpConv7GraphBecomesCanonical) {
    const NcnnText t = ncnn_of(upconv7_layers({}), 0);
    const DetectedModel m = import_text(t);
    EXPECT_EQ(m.arch_name, "UpConv7");
    EXPECT_EQ(m.scale, 2);
    // ncnn stores a deconvolution [out, in, k, k]; the canonical tensor is PyTorch's [in, out].
    EXPECT_EQ(m.weights.at("net.12.weight").shape, (std::vector<int64_t>{256, 3, 4, 4}));
    const DetectedModel again = detect_architecture(m.weights);
    EXPECT_EQ(again.arch_name, "UpConv7");
}

TEST(UnetGanNcnn, CUNetGraphBecomesCanonical) {
    for (const int scale : {1, 2, 3, 4}) {
        CUNetConfig c;
        c.scale = scale;
        const DetectedModel m = import_text(ncnn_of(cunet_layers(c), 4));
        EXPECT_EQ(m.arch_name, "CUNet");
        EXPECT_EQ(m.scale, scale);
        EXPECT_EQ(model_family(m.config), "Real-CUGAN");  // no Eltwise layers
        EXPECT_EQ(m.weights.at("unet2.conv3.seblock.conv2.weight").shape,
                  (std::vector<int64_t>{128, 16, 1, 1}));
    }
}

TEST(UnetGanNcnn, DeviationsNameTheLayer) {
    NcnnText t = ncnn_of(upconv7_layers({}), 0);
    t.param = replaced(t.param, "-23310=1,0.1", "-23310=1,0.2");
    expect_error([&] { import_text(t); }, core::ErrorCode::UNSUPPORTED,
                 {"'l0'", "net.0", "activation"});
    CUNetConfig c;
    t = ncnn_of(cunet_layers(c), 4);
    t.param = replaced(t.param, " 3=2", " 3=1", t.param.find("Convolution l2 "));
    expect_error([&] { import_text(t); }, core::ErrorCode::UNSUPPORTED,
                 {"'l2'", "unet1.conv1_down", "2x2 stride 2 pad 0"});
    t = ncnn_of(cunet_layers(c), 3);
    expect_error([&] { import_text(t); }, core::ErrorCode::UNSUPPORTED, {"3 poolings", "4"});
}

// A Real-CUGAN graph in the models folder is listed as Real-CUGAN's, with the denoise level
// its name states, and loads.
TEST(UnetGanNcnn, RealCuganFileIsListedWithItsFamilyAndNoise) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("kiln-unet-gan-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const NcnnText t = ncnn_of(cunet_layers({}), 4);
    {
        std::ofstream(dir / "realcugan-up2x-denoise1x.param") << t.param;
        std::ofstream bin(dir / "realcugan-up2x-denoise1x.bin", std::ios::binary);
        bin.write(reinterpret_cast<const char*>(t.bin.data()),
                  static_cast<std::streamsize>(t.bin.size()));
    }
    ModelRegistry registry(dir);
    const auto models = registry.list();
    ASSERT_EQ(models.size(), 1u);
    EXPECT_EQ(models[0].error, "");
    EXPECT_EQ(models[0].arch_name, "CUNet");
    EXPECT_EQ(models[0].family, "Real-CUGAN");
    EXPECT_EQ(models[0].noise, "1");
    EXPECT_EQ(models[0].scale, 2);
    EXPECT_EQ(registry.load("realcugan-up2x-denoise1x").arch_name, "CUNet");
    std::filesystem::remove_all(dir);
}

TEST(UnetGanNames, NoiseLevelAndFamily) {
    EXPECT_EQ(noise_level_of_name("waifu2x-cunet-noise2-scale2x"), "2");
    EXPECT_EQ(noise_level_of_name("noise0_scale2.0x_model"), "0");
    EXPECT_EQ(noise_level_of_name("realcugan-up3x-denoise3x"), "3");
    EXPECT_EQ(noise_level_of_name("realcugan-up2x-no-denoise"), "none");
    EXPECT_EQ(noise_level_of_name("up4x-conservative"), "conservative");
    EXPECT_EQ(noise_level_of_name("waifu2x-cunet-scale2x"), "");
    EXPECT_EQ(noise_level_of_name("noise12"), "");
    CUNetConfig c;
    EXPECT_EQ(model_family(c), "Real-CUGAN");
    c.program = CUNetConfig::Program::WAIFU2X;
    EXPECT_EQ(model_family(c), "waifu2x");
    EXPECT_EQ(model_family(UpConv7Config{}), "waifu2x");
    EXPECT_EQ(model_family(RRDBNetConfig{}), "Real-ESRGAN");
}

// The official files (scripts/fetch-models.sh): structure and parameter counts.
TEST(UnetGanReal, Waifu2xAndRealCuganFiles) {
    struct Expect {
        const char* stem;
        const char* arch;
        const char* family;
        int scale;
        int64_t params;
    };
    const Expect files[] = {
        {"waifu2x-upconv7-anime-noise0-scale2x", "UpConv7", "waifu2x", 2, 552483},
        {"waifu2x-cunet-noise0-scale2x", "CUNet", "waifu2x", 2, 1284598},
        {"waifu2x-cunet-scale2x", "CUNet", "waifu2x", 2, 1284598},
        {"waifu2x-cunet-noise3", "CUNet", "waifu2x", 1, 1283254},
        {"realcugan-up2x-no-denoise", "CUNet", "Real-CUGAN", 2, 1284598},
        {"realcugan-up3x-denoise3x", "CUNet", "Real-CUGAN", 3, 1286326},
        {"realcugan-up4x-conservative", "CUNet", "Real-CUGAN", 4, 1406812},
    };
    int found = 0;
    for (const Expect& e : files) {
        const auto param = real_model(std::string(e.stem) + ".param");
        if (!std::filesystem::exists(param))
            continue;
        ++found;
        const DetectedModel m =
            import_ncnn(load_ncnn(param, real_model(std::string(e.stem) + ".bin")));
        EXPECT_EQ(m.arch_name, e.arch) << e.stem;
        EXPECT_EQ(model_family(m.config), e.family) << e.stem;
        EXPECT_EQ(m.scale, e.scale) << e.stem;
        int64_t n = 0;
        for (const auto& [k, w] : m.weights)
            n += w.numel();
        EXPECT_EQ(n, e.params) << e.stem;
    }
    if (found == 0)
        GTEST_SKIP() << "waifu2x / Real-CUGAN models not fetched";
}

}  // namespace
}  // namespace kiln::weights
