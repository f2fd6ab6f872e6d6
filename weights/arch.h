// Architecture detection: from tensor names and shapes alone, decide which model family a
// state dict belongs to and derive its hyper-parameters; rename it into kiln's canonical
// naming (BasicSR's) so model code knows one set of keys.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

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

// waifu2x UpConv7 (waifu2x's upconv_7 models; nunif waifu2x/models/upconv_7.py): six
// unpadded 3x3 convolutions (16, 32, 64, 128, 128, 256 channels, LeakyReLU 0.1) and a 4x4
// stride-2 pad-3 transposed convolution; 2x. Canonical keys: net.{0,2,...,10} (convs),
// net.12 (the ConvTranspose2d), each .weight and .bias.
struct UpConv7Config {
    int num_in_ch = 3;
    int num_out_ch = 3;
};

// waifu2x CUNet and Real-CUGAN's UpCunet2x (bilibili/ailab Real-CUGAN upcunet_v3.py): two
// UNets of unpadded convolutions with squeeze-excitation, the second refining the first's
// output (unet1's output cropped by 20 plus unet2's). Canonical keys are Real-CUGAN's:
// unet1.{conv1,conv2}.conv.{0,2}, unet1.conv1_down, unet1.conv2.seblock.conv{1,2},
// unet1.conv2_up, unet1.conv3, unet1.conv_bottom; unet2.conv{1..4}.conv.{0,2},
// unet2.conv{2,3,4}.seblock.conv{1,2}, unet2.conv{1,2}_down, unet2.conv{3,4}_up, unet2.conv5,
// unet2.conv_bottom (each .weight and .bias).
struct CUNetConfig {
    // 2: unet1's bottom is a 4x4 stride-2 transposed convolution; 3: a 5x5 stride-3 one
    // (Real-CUGAN's UpCunet3x); 1: a 3x3 convolution (waifu2x's noise-only CUNet); 4: 2x's
    // UNets at 64 channels, conv_final to 4 channels a pixel, a 2x pixel shuffle and the
    // nearest-upsampled input added (Real-CUGAN's UpCunet4x).
    int scale = 2;
    int num_in_ch = 3;
    int num_out_ch = 3;
    // Whose files these are: the same network, processed by each program's own rules
    // (edge padding, tiles). ncnn graphs tell them apart (waifu2x's use Eltwise and Scale
    // layers, Real-CUGAN's BinaryOp); state dicts in Real-CUGAN's naming are Real-CUGAN's.
    enum class Program { WAIFU2X, REAL_CUGAN } program = Program::REAL_CUGAN;
};

// OmniSR (Wang et al., "Omni Aggregation Networks for Lightweight Image Super-Resolution",
// CVPR 2023; the published OmniSR.py, OSAG.py, OSA.py, esa.py): a 3x3 input conv, res_num
// OSAG groups (block_num OSA blocks of MBConv + block attention + channel attention + grid
// attention + gated feed-forwards, a 1x1 conv, the group's residual and ESA), a 3x3 output
// conv plus the input conv's features, and a 3x3 conv + pixel shuffle. The image is padded
// with zeros to a multiple of window_size (bottom, right) and the output cropped back.
// Canonical keys are the published code's: input, output, up.0,
// residual_layer.{i}.residual_layer.{j}.layer.{0,2,4,5,6,8,10,11,12}.*,
// residual_layer.{i}.residual_layer.{block_num}, residual_layer.{i}.esa.conv{1,_f,2,3,4}.
struct OmniSRConfig {
    int num_in_ch = 3;
    int num_out_ch = 3;
    int num_feat = 64;
    int res_num = 5;
    int block_num = 1;
    int window_size = 8;
    bool pe = true;  // relative position bias in the block and grid attention
    int scale = 4;
};

// OmniSR's tensors and their shapes, in the published code's naming.
std::vector<std::pair<std::string, std::vector<int64_t>>> omnisr_tensors(const OmniSRConfig& c);

using ArchConfig =
    std::variant<RRDBNetConfig, SRVGGNetCompactConfig, UpConv7Config, CUNetConfig, OmniSRConfig>;

struct DetectedModel {
    ArchConfig config;
    std::string arch_name;  // "RRDBNet", "SRVGGNetCompact", "UpConv7", "CUNet", "OmniSR"
    int scale = 1;
    StateDict weights;  // canonical naming
    // Some ncnn graphs end with a bicubic resize after the network (ncnn Interp resize_type 3):
    // realesr-animevideov3-x2/x3 are the x4 network followed by a 0.5/0.75 resize. 1 when
    // there is none; `scale` already includes it.
    float output_resize = 1.0f;
};

// Throws kiln::core::Error(UNSUPPORTED) naming what was seen when nothing matches.
DetectedModel detect_architecture(StateDict weights);

// The project whose models these are: "Real-ESRGAN", "waifu2x", "Real-CUGAN", "OmniSR".
std::string model_family(const ArchConfig& config);

}  // namespace kiln::weights
