// Detection on the real published models (skipped until scripts fetch them into models/).
#include "tests/weights/test_support.h"
#include "weights/arch.h"
#include "weights/ncnn.h"
#include "weights/ncnn_import.h"
#include "weights/pth.h"

namespace kiln::weights {
namespace {

using test::real_model;

int64_t param_count(const StateDict& sd) {
    int64_t n = 0;
    for (const auto& [k, t] : sd)
        n += t.numel();
    return n;
}

DetectedModel import_real(const std::string& stem) {
    return import_ncnn(load_ncnn(real_model(stem + ".param"), real_model(stem + ".bin")));
}

void expect_rrdb(const DetectedModel& m, int blocks) {
    ASSERT_EQ(m.arch_name, "RRDBNet");
    const auto& c = std::get<RRDBNetConfig>(m.config);
    EXPECT_EQ(c.num_block, blocks);
    EXPECT_EQ(c.num_feat, 64);
    EXPECT_EQ(c.num_grow_ch, 32);
    EXPECT_EQ(c.num_in_ch, 3);
    EXPECT_EQ(m.scale, 4);
}

TEST(RealModels, RealesrganX4plusNcnn) {
    KILN_REQUIRE_REAL(real_model("realesrgan-x4plus.param"));
    const DetectedModel m = import_real("realesrgan-x4plus");
    expect_rrdb(m, 23);
    EXPECT_EQ(m.weights.at("conv_first.weight").stored_as, StorageDType::F16);
}

TEST(RealModels, RealesrganX4plusAnimeNcnn) {
    KILN_REQUIRE_REAL(real_model("realesrgan-x4plus-anime.param"));
    expect_rrdb(import_real("realesrgan-x4plus-anime"), 6);
}

TEST(RealModels, AnimeVideoV3Ncnn) {
    for (const auto& [stem, scale, resize] : {std::tuple{"realesr-animevideov3-x2", 2, 0.5f},
                                              {"realesr-animevideov3-x3", 3, 0.75f},
                                              {"realesr-animevideov3-x4", 4, 1.0f}}) {
        if (!std::filesystem::exists(real_model(std::string(stem) + ".param")))
            GTEST_SKIP() << "not fetched: " << stem;
        const DetectedModel m = import_real(stem);
        ASSERT_EQ(m.arch_name, "SRVGGNetCompact") << stem;
        const auto& c = std::get<SRVGGNetCompactConfig>(m.config);
        EXPECT_EQ(c.num_conv, 16) << stem;
        EXPECT_EQ(c.num_feat, 64) << stem;
        EXPECT_EQ(c.act, SRVGGNetCompactConfig::Act::PRELU) << stem;
        // All three files hold the same x4 network; x2/x3 end with a bicubic downscale.
        EXPECT_EQ(c.upscale, 4) << stem;
        EXPECT_EQ(m.scale, scale) << stem;
        EXPECT_FLOAT_EQ(m.output_resize, resize) << stem;
    }
}

TEST(RealModels, AniScalePth) {
    KILN_REQUIRE_REAL(real_model("2x-AniScale.pth"));
    const DetectedModel m = detect_architecture(load_pth(real_model("2x-AniScale.pth")));
    ASSERT_EQ(m.arch_name, "SRVGGNetCompact");
    const auto& c = std::get<SRVGGNetCompactConfig>(m.config);
    EXPECT_EQ(c.upscale, 2);
    EXPECT_EQ(c.num_conv, 16);
    EXPECT_EQ(c.num_feat, 64);
    EXPECT_EQ(c.act, SRVGGNetCompactConfig::Act::PRELU);
    EXPECT_EQ(param_count(m.weights), 600652);
}

TEST(RealModels, YandereNeoSuperliteLegacyPth) {
    KILN_REQUIRE_REAL(real_model("4x-NMKD-YandereNeo-Superlite.pth"));
    const DetectedModel m =
        detect_architecture(load_pth(real_model("4x-NMKD-YandereNeo-Superlite.pth")));
    ASSERT_EQ(m.arch_name, "RRDBNet");
    const auto& c = std::get<RRDBNetConfig>(m.config);
    EXPECT_EQ(c.num_feat, 64);
    EXPECT_EQ(c.num_grow_ch, 32);
    EXPECT_EQ(m.scale, 4);
    EXPECT_EQ(param_count(m.weights), 1590083);
}

TEST(RealModels, WtpDescreentonIsOmniSR) {
    KILN_REQUIRE_REAL(real_model("4x_WTP_descreenton.pth"));
    const StateDict sd = load_pth(real_model("4x_WTP_descreenton.pth"));
    EXPECT_EQ(sd.size(), 316u);
    EXPECT_EQ(param_count(sd), 805376);
    const DetectedModel m = detect_architecture(sd);
    ASSERT_EQ(m.arch_name, "OmniSR");
    const auto& c = std::get<OmniSRConfig>(m.config);
    EXPECT_EQ(c.num_feat, 64);
    EXPECT_EQ(c.res_num, 5);
    EXPECT_EQ(c.block_num, 1);
    EXPECT_EQ(c.window_size, 8);
    EXPECT_TRUE(c.pe);
    EXPECT_EQ(m.scale, 4);
    EXPECT_EQ(model_family(m.config), "OmniSR");
}

}  // namespace
}  // namespace kiln::weights
