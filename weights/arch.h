// Architecture detection: from tensor names and shapes alone, decide which model family a
// state dict belongs to and derive its hyper-parameters; rename it into kiln's canonical
// naming (BasicSR's) so model code knows one set of keys.
#pragma once

#include <string>
#include <variant>

#include "weights/state_dict.h"

namespace kiln::weights {

// Real-ESRGAN / ESRGAN generator (BasicSR basicsr/archs/rrdbnet_arch.py).
// Canonical keys: conv_first, body.{i}.rdb{1..3}.conv{1..5}, conv_body, conv_up1, conv_up2,
// conv_hr, conv_last (each .weight and .bias).
struct RRDBNetConfig {
    int num_in_ch = 3;  // input channels of the network itself (3, or 12/48 after unshuffle)
    int num_out_ch = 3;
    int num_feat = 64;
    int num_block = 23;
    int num_grow_ch = 32;
    int scale = 4;         // overall image scale: 1, 2 (pixel-unshuffle input) or 4
    int num_upsample = 2;  // nearest x2 + conv stages (conv_up1..conv_up{n})
};

// Real-ESRGAN SRVGGNetCompact (realesr-animevideov3, AniScale).
// Canonical keys: body.{k}.weight/bias for convs (k even) and body.{k}.weight for PReLU
// (k odd); body.0 is the first conv, body.{2*num_conv+2} the last.
struct SRVGGNetCompactConfig {
    int num_in_ch = 3;
    int num_out_ch = 3;
    int num_feat = 64;
    int num_conv = 16;
    int upscale = 4;
    enum class Act { RELU, PRELU, LEAKY_RELU } act = Act::PRELU;
};

using ArchConfig = std::variant<RRDBNetConfig, SRVGGNetCompactConfig>;

struct DetectedModel {
    ArchConfig config;
    std::string arch_name;  // "RRDBNet", "SRVGGNetCompact"
    int scale = 1;
    StateDict weights;  // canonical naming
    // Some ncnn graphs end with a bicubic resize after the network (ncnn Interp resize_type 3):
    // realesr-animevideov3-x2/x3 are the x4 network followed by a 0.5/0.75 resize. 1 when
    // there is none; `scale` already includes it.
    float output_resize = 1.0f;
};

// Throws kiln::core::Error(UNSUPPORTED) naming what was seen when nothing matches.
DetectedModel detect_architecture(StateDict weights);

}  // namespace kiln::weights
