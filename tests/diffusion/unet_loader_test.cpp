// Loading what users have: diffusers config.json parsing with its naming traps, the LDM
// (CompVis) key names mapped to diffusers', configs derived from shapes, and refusals that
// name the field.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/diffusion/test_data.h"
#include "weights/diffusers_unet.h"
#include "weights/safetensors.h"

namespace kiln::weights {
namespace {

using test::diffusion_data;

std::string config_text(const std::string& dir) {
    return test::read_json(diffusion_data() / dir / "config.json").dump();
}

TEST(UNetLoader, ParsesTheFashionConfig) {
    const UNetConfig c = parse_unet_config(config_text("fashion-unet"), "config.json");
    EXPECT_EQ(c.in_channels, 1);
    EXPECT_EQ(c.out_channels, 1);
    EXPECT_EQ(c.block_out_channels, (std::vector<int>{32, 32, 64}));
    EXPECT_EQ(c.layers_per_block, 1);
    EXPECT_EQ(c.norm_num_groups, 8);
    EXPECT_EQ(c.cross_attention_dim, 64);
    EXPECT_EQ(c.sample_size, 32);
    // SD naming: attention_head_dim = 1 is ONE head, not heads of width 1.
    EXPECT_EQ(c.heads, (std::vector<int>{1, 1, 1}));
    EXPECT_EQ(c.down_blocks,
              (std::vector<UNetBlockKind>{UNetBlockKind::PLAIN, UNetBlockKind::CROSS_ATTENTION,
                                          UNetBlockKind::CROSS_ATTENTION}));
    EXPECT_EQ(c.time_embed_dim(), 128);
}

TEST(UNetLoader, NumAttentionHeadsWinsOverTheHistoricalName) {
    auto j = test::read_json(diffusion_data() / "tiny_sd" / "config.json");
    EXPECT_EQ(parse_unet_config(j.dump(), "c").heads, (std::vector<int>{2, 2, 2, 2}));
    j["attention_head_dim"] = {1, 2, 4, 8};
    EXPECT_EQ(parse_unet_config(j.dump(), "c").heads, (std::vector<int>{1, 2, 4, 8}));
    j["num_attention_heads"] = 4;
    EXPECT_EQ(parse_unet_config(j.dump(), "c").heads, (std::vector<int>{4, 4, 4, 4}));
}

TEST(UNetLoader, RefusesUnimplementedFieldsByName) {
    const auto base = test::read_json(diffusion_data() / "fashion-unet" / "config.json");
    const std::vector<std::pair<std::string, nlohmann::json>> cases = {
        {"class_embed_type", "timestep"},
        {"resnet_time_scale_shift", "scale_shift"},
        {"upcast_attention", true},
        {"time_embedding_type", "fourier"},
        {"transformer_layers_per_block", 2},
        {"addition_embed_type", "text_time"},
        {"mid_block_type", "UNetMidBlock2DSimpleCrossAttn"},
        {"down_block_types", {"DownBlock2D", "SimpleCrossAttnDownBlock2D", "DownBlock2D"}},
    };
    for (const auto& [field, value] : cases) {
        auto j = base;
        j[field] = value;
        try {
            parse_unet_config(j.dump(), "config.json");
            ADD_FAILURE() << field << " accepted";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), core::ErrorCode::UNSUPPORTED) << field;
            EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
        }
    }
    auto bad = base;
    bad["norm_num_groups"] = 5;  // does not divide 32
    EXPECT_THROW(parse_unet_config(bad.dump(), "c"), core::Error);
    EXPECT_THROW(parse_unet_config("[1, 2]", "c"), core::Error);
    EXPECT_THROW(parse_unet_config("{\"block_out_channels\": \"wide\"}", "c"), core::Error);
}

class LdmNaming : public testing::TestWithParam<std::string> {};

TEST_P(LdmNaming, MapsEveryKeyToItsDiffusersName) {
    const auto dir = diffusion_data() / GetParam();
    const UNetConfig c = parse_unet_config(config_text(GetParam()), "config.json");
    const auto key_map = test::read_json(dir / "key_map.json");
    for (const auto& [diffusers, ldm] : key_map.items()) {
        const std::string l = ldm.get<std::string>();
        ASSERT_EQ(l.rfind("model.diffusion_model.", 0), 0u);
        EXPECT_EQ(ldm_key_to_diffusers(l.substr(22), c), diffusers) << l;
    }
    const StateDict from_ldm = to_diffusers_names(load_safetensors(dir / "ldm.safetensors"), c);
    const StateDict direct = load_safetensors(dir / "diffusers.safetensors");
    ASSERT_EQ(from_ldm.size(), direct.size());
    for (const auto& [name, t] : direct) {
        const auto it = from_ldm.find(name);
        ASSERT_NE(it, from_ldm.end()) << name;
        EXPECT_EQ(it->second.data, t.data) << name;
    }
}

TEST_P(LdmNaming, DerivesTheConfigFromShapes) {
    const auto dir = diffusion_data() / GetParam();
    const UNetConfig want = parse_unet_config(config_text(GetParam()), "config.json");
    const StateDict ldm = load_safetensors(dir / "ldm.safetensors");
    ASSERT_TRUE(is_ldm_state_dict(ldm));
    const UNetConfig got = derive_unet_config(ldm);
    EXPECT_EQ(got.in_channels, want.in_channels);
    EXPECT_EQ(got.out_channels, want.out_channels);
    EXPECT_EQ(got.block_out_channels, want.block_out_channels);
    EXPECT_EQ(got.layers_per_block, want.layers_per_block);
    EXPECT_EQ(got.down_blocks, want.down_blocks);
    EXPECT_EQ(got.up_blocks, want.up_blocks);
    EXPECT_EQ(got.cross_attention_dim, want.cross_attention_dim);
    EXPECT_EQ(got.use_linear_projection, want.use_linear_projection);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, LdmNaming, testing::Values("tiny_sd", "tiny_fashion"));

TEST(UNetLoader, OldAttentionNamesAndLinearProjections) {
    StateDict w;
    w["mid_block.attentions.0.transformer_blocks.0.attn1.query.weight"] = {
        StorageDType::F32, {2, 2}, {1, 2, 3, 4}};
    w["mid_block.attentions.0.proj_in.weight"] = {StorageDType::F32, {2, 3}, {1, 2, 3, 4, 5, 6}};
    w["unet.conv_in.bias"] = {StorageDType::F32, {1}, {0.5f}};
    const StateDict out = to_diffusers_names(std::move(w), UNetConfig{});
    EXPECT_TRUE(out.count("mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight"));
    EXPECT_TRUE(out.count("conv_in.bias"));
    EXPECT_EQ(out.at("mid_block.attentions.0.proj_in.weight").shape,
              (std::vector<int64_t>{2, 3, 1, 1}));
}

TEST(UNetLoader, LoadsAFolderAndRefusesOneWithout) {
    const UNetFiles f = load_unet(diffusion_data() / "fashion-unet");
    EXPECT_EQ(f.config.block_out_channels, (std::vector<int>{32, 32, 64}));
    EXPECT_TRUE(f.weights.count("down_blocks.1.attentions.0.proj_in.weight"));
    EXPECT_TRUE(is_unet_folder(diffusion_data() / "fashion-unet"));
    EXPECT_FALSE(is_unet_folder(diffusion_data() / "classifier"));
    EXPECT_THROW(load_unet(diffusion_data() / "classifier"), core::Error);
}

}  // namespace
}  // namespace kiln::weights
