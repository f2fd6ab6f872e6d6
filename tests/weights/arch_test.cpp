#include "weights/arch.h"

#include "tests/weights/test_support.h"
#include "weights/ncnn.h"
#include "weights/ncnn_import.h"
#include "weights/pth.h"
#include "weights/safetensors.h"

namespace kiln::weights {
namespace {

using test::expect_error;
using test::fixture;

TEST(Arch, RRDBNetBasicSRScale4) {
    const DetectedModel m = detect_architecture(load_pth(fixture("rrdb_x4_basicsr.pth")));
    EXPECT_EQ(m.arch_name, "RRDBNet");
    EXPECT_EQ(m.scale, 4);
    const auto& c = std::get<RRDBNetConfig>(m.config);
    EXPECT_EQ(c.num_block, 1);
    EXPECT_EQ(c.num_feat, 4);
    EXPECT_EQ(c.num_grow_ch, 2);
    EXPECT_EQ(c.num_in_ch, 3);
    EXPECT_EQ(c.num_out_ch, 3);
    EXPECT_EQ(c.num_upsample, 2);
    EXPECT_EQ(c.scale, 4);
    test::expect_matches_fixture(m.weights, "rrdb_x4_basicsr.pth");
}

TEST(Arch, RRDBNetBasicSRScale2UsesPixelUnshuffle) {
    const DetectedModel m = detect_architecture(load_pth(fixture("rrdb_x2_basicsr_ema.pth")));
    const auto& c = std::get<RRDBNetConfig>(m.config);
    EXPECT_EQ(c.num_in_ch, 12);
    EXPECT_EQ(c.scale, 2);
    EXPECT_EQ(m.scale, 2);
}

TEST(Arch, OriginalEsrganNamingBecomesCanonical) {
    const DetectedModel basicsr = detect_architecture(load_pth(fixture("rrdb_x4_basicsr.pth")));
    for (const char* file : {"rrdb_x4_esrgan.pth", "rrdb_x4_esrgan_legacy.pth"}) {
        const DetectedModel m = detect_architecture(load_pth(fixture(file)));
        EXPECT_EQ(m.scale, 4) << file;
        ASSERT_EQ(m.weights.size(), basicsr.weights.size()) << file;
        for (const auto& [k, t] : basicsr.weights) {
            ASSERT_TRUE(m.weights.count(k)) << file << ": " << k;
            EXPECT_EQ(m.weights.at(k).data, t.data) << file << ": " << k;
        }
    }
}

TEST(Arch, RRDBTrunkNamingBecomesCanonical) {
    const DetectedModel basicsr = detect_architecture(load_pth(fixture("rrdb_x4_basicsr.pth")));
    StateDict trunk;
    for (const auto& [k, t] : basicsr.weights) {
        std::string n = k;
        if (n.starts_with("body."))
            n = "RRDB_trunk." + n.substr(5);
        for (auto [from, to] : {std::pair{".rdb", ".RDB"},
                                {"conv_body", "trunk_conv"},
                                {"conv_up", "upconv"},
                                {"conv_hr", "HRconv"}}) {
            if (const size_t at = n.find(from); at != std::string::npos)
                n.replace(at, std::string(from).size(), to);
        }
        trunk[n] = t;
    }
    ASSERT_TRUE(trunk.count("RRDB_trunk.0.RDB1.conv1.weight"));
    const DetectedModel m = detect_architecture(std::move(trunk));
    EXPECT_EQ(m.scale, 4);
    for (const auto& [k, t] : basicsr.weights)
        EXPECT_EQ(m.weights.at(k).data, t.data) << k;
}

TEST(Arch, SRVGGNetCompact) {
    for (const auto& [file, up] :
         {std::pair{"srvgg_x4.pth", 4}, {"srvgg_x2_params.pth", 2}, {"srvgg_x4.safetensors", 4}}) {
        const bool st = std::string(file).ends_with(".safetensors");
        const DetectedModel m =
            detect_architecture(st ? load_safetensors(fixture(file)) : load_pth(fixture(file)));
        EXPECT_EQ(m.arch_name, "SRVGGNetCompact") << file;
        const auto& c = std::get<SRVGGNetCompactConfig>(m.config);
        EXPECT_EQ(c.num_conv, 2) << file;
        EXPECT_EQ(c.num_feat, 4) << file;
        EXPECT_EQ(c.upscale, up) << file;
        EXPECT_EQ(c.act, SRVGGNetCompactConfig::Act::PRELU) << file;
        EXPECT_EQ(m.scale, up) << file;
    }
}

TEST(Arch, SRVGGWithoutPReLUAssumesLeakyReLU) {
    StateDict sd = load_pth(fixture("srvgg_x4.pth"));
    for (int k : {1, 3, 5})
        sd.erase("body." + std::to_string(k) + ".weight");
    const DetectedModel m = detect_architecture(std::move(sd));
    EXPECT_EQ(std::get<SRVGGNetCompactConfig>(m.config).act,
              SRVGGNetCompactConfig::Act::LEAKY_RELU);
}

TEST(Arch, WrongShapeNamesKeyAndShapes) {
    StateDict sd = load_pth(fixture("rrdb_x4_basicsr.pth"));
    sd["body.0.rdb2.conv3.weight"].shape = {2, 7, 3, 3};
    expect_error([&] { detect_architecture(sd); }, core::ErrorCode::BAD_FILE,
                 {"body.0.rdb2.conv3.weight", "[2, 7, 3, 3]", "expected [2, 8, 3, 3]"});
    sd = load_pth(fixture("rrdb_x4_basicsr.pth"));
    sd.erase("conv_hr.bias");
    expect_error([&] { detect_architecture(sd); }, core::ErrorCode::BAD_FILE,
                 {"conv_hr.bias", "missing"});
    StateDict vgg = load_pth(fixture("srvgg_x4.pth"));
    vgg["body.3.weight"].shape = {5};
    expect_error([&] { detect_architecture(vgg); }, core::ErrorCode::BAD_FILE,
                 {"body.3.weight", "[5]", "expected [4]"});
}

TEST(Arch, ExtraTensorIsUnsupportedVariant) {
    StateDict sd = load_pth(fixture("rrdb_x4_basicsr.pth"));
    sd["body.0.rdb1.conv1x1.weight"] = sd["conv_body.bias"];
    expect_error([&] { detect_architecture(sd); }, core::ErrorCode::UNSUPPORTED,
                 {"RRDBNet", "unexpected tensors"});
}

TEST(Arch, UnknownArchitecture) {
    StateDict sd = load_pth(fixture("views.pth"));
    expect_error([&] { detect_architecture(sd); }, core::ErrorCode::UNSUPPORTED,
                 {"unknown architecture: 3 tensors", "first keys: all [40]"});
}

DetectedModel import_fixture(const std::string& stem) {
    return import_ncnn(load_ncnn(fixture(stem + ".param"), fixture(stem + ".bin")));
}

TEST(NcnnImport, SRVGGGraph) {
    const DetectedModel m = import_fixture("srvgg_x4_ncnn");
    EXPECT_EQ(m.arch_name, "SRVGGNetCompact");
    const auto& c = std::get<SRVGGNetCompactConfig>(m.config);
    EXPECT_EQ(c.upscale, 4);
    EXPECT_EQ(c.num_conv, 2);
    EXPECT_EQ(c.act, SRVGGNetCompactConfig::Act::PRELU);
    EXPECT_EQ(m.scale, 4);
    EXPECT_EQ(m.output_resize, 1.0f);
    test::expect_matches_fixture(m.weights, "srvgg_x4_ncnn");
}

TEST(NcnnImport, SRVGGGraphWithFinalBicubicResize) {
    const DetectedModel m = import_fixture("srvgg_x4to2_ncnn");
    EXPECT_EQ(std::get<SRVGGNetCompactConfig>(m.config).upscale, 4);
    EXPECT_EQ(m.scale, 2);
    EXPECT_FLOAT_EQ(m.output_resize, 0.5f);
}

TEST(NcnnImport, RRDBNetGraph) {
    const DetectedModel m = import_fixture("rrdb_x4_ncnn");
    EXPECT_EQ(m.arch_name, "RRDBNet");
    const auto& c = std::get<RRDBNetConfig>(m.config);
    EXPECT_EQ(c.num_block, 1);
    EXPECT_EQ(c.num_feat, 4);
    EXPECT_EQ(c.num_grow_ch, 2);
    EXPECT_EQ(m.scale, 4);
    test::expect_matches_fixture(m.weights, "rrdb_x4_ncnn");
}

TEST(NcnnImport, DeviatingOpsAreRefused) {
    const NcnnGraph good = load_ncnn(fixture("rrdb_x4_ncnn.param"), fixture("rrdb_x4_ncnn.bin"));
    NcnnGraph g = good;
    for (NcnnLayer& l : g.layers) {
        if (l.type == "Eltwise")
            l.params[1].array = {0.5f, 1.0f};
    }
    expect_error([&] { import_ncnn(g); }, core::ErrorCode::UNSUPPORTED, {"residual scaling"});
    g = good;
    for (NcnnLayer& l : g.layers) {
        if (l.type == "Interp")
            l.params[0].i = 2;
    }
    expect_error([&] { import_ncnn(g); }, core::ErrorCode::UNSUPPORTED, {"not nearest x2"});
    g = good;
    for (NcnnLayer& l : g.layers) {
        if (l.name == "conv_up1")
            l.params[10].array = {0.1f};
    }
    expect_error([&] { import_ncnn(g); }, core::ErrorCode::UNSUPPORTED,
                 {"conv_up1", "LeakyReLU 0.2"});
}

TEST(NcnnImport, UnknownGraphListsLayerCounts) {
    NcnnGraph g =
        parse_ncnn_param("7767517\n2 2\nInput in 0 1 data\nReLU r 1 1 data out\n", "x.param");
    expect_error([&] { import_ncnn(g); }, core::ErrorCode::UNSUPPORTED, {"Input x1", "ReLU x1"});
}

}  // namespace
}  // namespace kiln::weights
