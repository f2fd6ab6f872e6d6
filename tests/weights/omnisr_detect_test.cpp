// OmniSR detection from tensor names and shapes: the hyper-parameters it derives, the files
// it refuses (a missing, extra or misshapen tensor; an impossible position-bias table; what
// kiln does not implement), and the architecture block of a converted file, which supplies
// the window size when no position bias records it.
#include <gtest/gtest.h>

#include "tests/weights/test_support.h"
#include "weights/arch.h"
#include "weights/arch_metadata.h"

namespace kiln::weights {
namespace {

using test::expect_error;

StateDict zeros_of(const OmniSRConfig& c) {
    StateDict sd;
    for (const auto& [key, shape] : omnisr_tensors(c)) {
        int64_t n = 1;
        for (int64_t d : shape)
            n *= d;
        sd[key] = {StorageDType::F32, shape, std::vector<float>(static_cast<size_t>(n), 0.0f)};
    }
    return sd;
}

OmniSRConfig config(int window, bool pe, int scale) {
    OmniSRConfig c;
    c.num_feat = 32;
    c.res_num = 3;
    c.block_num = 2;
    c.window_size = window;
    c.pe = pe;
    c.scale = scale;
    return c;
}

TEST(OmniSRDetect, DerivesEveryHyperParameter) {
    for (const auto& want : {config(8, true, 4), config(6, true, 2), config(8, false, 3)}) {
        const DetectedModel m = detect_architecture(zeros_of(want));
        ASSERT_EQ(m.arch_name, "OmniSR");
        const auto& c = std::get<OmniSRConfig>(m.config);
        EXPECT_EQ(c.num_feat, 32);
        EXPECT_EQ(c.res_num, 3);
        EXPECT_EQ(c.block_num, 2);
        EXPECT_EQ(c.pe, want.pe);
        // Without position-bias tables the window is the published default, 8.
        EXPECT_EQ(c.window_size, want.pe ? want.window_size : 8);
        EXPECT_EQ(m.scale, want.scale);
    }
}

TEST(OmniSRDetect, DropsProfilerCounters) {
    StateDict sd = zeros_of(config(8, true, 4));
    sd["residual_layer.0.total_ops"] = {StorageDType::F32, {1}, {0.0f}};
    sd["total_params"] = {StorageDType::F32, {1}, {0.0f}};
    EXPECT_EQ(detect_architecture(std::move(sd)).arch_name, "OmniSR");
}

TEST(OmniSRDetect, RefusesWhatDoesNotFit) {
    const OmniSRConfig c = config(8, true, 4);
    {
        StateDict sd = zeros_of(c);
        sd.erase("residual_layer.2.esa.conv3.bias");
        expect_error([&] { detect_architecture(sd); }, core::ErrorCode::BAD_FILE,
                     {"residual_layer.2.esa.conv3.bias", "missing"});
    }
    {
        StateDict sd = zeros_of(c);
        sd["residual_layer.0.residual_layer.0.layer.3.weight"] = {
            StorageDType::F32, {4}, {0, 0, 0, 0}};
        expect_error([&] { detect_architecture(sd); }, core::ErrorCode::BAD_FILE,
                     {"unexpected tensor", "layer.3.weight"});
    }
    {
        StateDict sd = zeros_of(c);
        sd["residual_layer.1.residual_layer.1.layer.5.fn.qkv.weight"].shape = {96, 32, 3, 3};
        expect_error([&] { detect_architecture(sd); }, core::ErrorCode::BAD_FILE,
                     {"layer.5.fn.qkv.weight", "expected [96, 32, 1, 1]"});
    }
    {
        StateDict sd = zeros_of(c);
        sd["residual_layer.0.residual_layer.0.layer.2.fn.rel_pos_bias.weight"].shape = {224, 4};
        expect_error([&] { detect_architecture(sd); }, core::ErrorCode::BAD_FILE,
                     {"relative position bias"});
    }
    {
        // A window of 17 would expand every position-bias table to 4 x 289^2 floats.
        expect_error([&] { detect_architecture(zeros_of(config(17, true, 4))); },
                     core::ErrorCode::UNSUPPORTED, {"window 17"});
    }
    {
        StateDict sd = zeros_of(c);
        sd["input.weight"].shape = {32, 4, 3, 3};
        expect_error([&] { detect_architecture(sd); }, core::ErrorCode::UNSUPPORTED,
                     {"4 input channels"});
    }
    {
        StateDict sd = zeros_of(c);
        sd["up.0.weight"].shape = {40, 32, 3, 3};
        expect_error([&] { detect_architecture(sd); }, core::ErrorCode::UNSUPPORTED,
                     {"40 outputs"});
    }
}

// A converted file without position bias carries its window size in the architecture
// block; a block that disagrees with the tensors is refused.
TEST(OmniSRDetect, ArchitectureBlockSuppliesTheWindow) {
    DetectedModel m = detect_architecture(zeros_of(config(8, false, 2)));
    std::get<OmniSRConfig>(m.config).window_size = 4;
    const auto meta = arch_metadata(m);
    DetectedModel loaded = detect_architecture(zeros_of(config(8, false, 2)));
    apply_arch_metadata(loaded, meta);
    EXPECT_EQ(std::get<OmniSRConfig>(loaded.config).window_size, 4);

    DetectedModel with_pe = detect_architecture(zeros_of(config(6, true, 2)));
    auto other = arch_metadata(with_pe);
    DetectedModel eight = detect_architecture(zeros_of(config(8, true, 2)));
    expect_error([&] { apply_arch_metadata(eight, other); }, core::ErrorCode::BAD_FILE,
                 {"disagrees with the tensors"});
}

}  // namespace
}  // namespace kiln::weights
