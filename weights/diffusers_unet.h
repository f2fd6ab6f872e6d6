// Stable Diffusion 1.x/2.x-style conditional UNets as users have them: a diffusers folder
// (unet/config.json + diffusion_pytorch_model.safetensors) or an original LDM checkpoint
// (`model.diffusion_model.*` keys), both read into diffusers' parameter names.
//
// Traps handled here (see docs/diffusion.md):
// - in SD configs `attention_head_dim` is the NUMBER of heads (diffusers' historical naming),
//   unless `num_attention_heads` is set;
// - SD 2.x uses Linear proj_in/proj_out (`use_linear_projection`): [out, in] instead of
//   [out, in, 1, 1], the same numbers;
// - old UNet2DModel-era files name attention `query/key/value/proj_attn`.
// Config fields kiln does not implement are refused with a message naming the field.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "weights/state_dict.h"

namespace kiln::weights {

enum class UNetBlockKind { PLAIN, CROSS_ATTENTION };

struct UNetConfig {
    int in_channels = 4;
    int out_channels = 4;
    std::vector<int> block_out_channels = {320, 640, 1280, 1280};
    std::vector<UNetBlockKind> down_blocks;  // DownBlock2D or CrossAttnDownBlock2D
    std::vector<UNetBlockKind> up_blocks;    // UpBlock2D or CrossAttnUpBlock2D
    int layers_per_block = 2;
    int norm_num_groups = 32;
    float norm_eps = 1e-5f;
    int cross_attention_dim = 768;
    std::vector<int> heads;  // per down level (the up path mirrors it); mid block uses last
    bool use_linear_projection = false;
    bool flip_sin_to_cos = true;
    float freq_shift = 0.0f;
    int sample_size = 64;

    int time_embed_dim() const { return block_out_channels.front() * 4; }
    int levels() const { return static_cast<int>(block_out_channels.size()); }
};

// Parses a diffusers UNet2DConditionModel config.json. core::Error(UNSUPPORTED) names the first
// field whose value kiln does not implement; core::Error(BAD_FILE) for malformed JSON or types.
UNetConfig parse_unet_config(const std::string& json_text, const std::string& origin);

// The diffusers key of an original LDM (CompVis) key for this config, without the
// "model.diffusion_model." prefix; empty when the key has no diffusers counterpart.
std::string ldm_key_to_diffusers(const std::string& ldm_key, const UNetConfig& config);

// Renames a state dict to diffusers names: LDM checkpoints (keys under
// "model.diffusion_model.", other keys — VAE, text encoder — dropped), old attention names
// (query/key/value/proj_attn) and a "unet." prefix. Linear proj_in/out weights become 1x1.
StateDict to_diffusers_names(StateDict weights, const UNetConfig& config);

// True when the state dict holds LDM-style UNet keys.
bool is_ldm_state_dict(const StateDict& weights);

// A config derived from tensor shapes, for LDM checkpoints without a config.json: channels,
// levels, layers per block, which levels have attention, context width and projection kind
// come from the shapes; heads (not visible in shapes) are SD 2.x's 64-wide heads with linear
// projections, else SD 1.x's 8; groups are 32 (or the largest power of two dividing every
// width).
UNetConfig derive_unet_config(const StateDict& ldm_weights);

struct UNetFiles {
    UNetConfig config;
    StateDict weights;  // diffusers names, fp32
};

// Loads a diffusers folder (the folder itself or its unet/ subfolder: config.json +
// diffusion_pytorch_model.safetensors) or a single LDM .safetensors checkpoint.
UNetFiles load_unet(const std::filesystem::path& path);

// True when `dir` looks like a diffusers UNet folder (config.json naming
// UNet2DConditionModel beside a safetensors file, directly or under unet/).
bool is_unet_folder(const std::filesystem::path& dir);

}  // namespace kiln::weights
