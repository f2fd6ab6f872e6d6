// The weighted layers of waifu2x's UpConv7 and CUNet (Real-CUGAN's UpCunet2x), in the order
// the official ncnn graphs list them: what detection checks a state dict against, what the
// ncnn import matches a graph against, and what the engine's models build from.
#pragma once

#include <string>
#include <vector>

#include "weights/arch.h"

namespace kiln::weights {

struct GanLayer {
    enum class Kind { CONV, DECONV, LINEAR };  // LINEAR: a 1x1 convolution on a [1, 1, c] value
    enum class Act { NONE, LEAKY_RELU, RELU, SIGMOID };  // LeakyReLU's slope is 0.1
    std::string key;  // state-dict prefix: key + ".weight", key + ".bias"
    Kind kind = Kind::CONV;
    int in = 0, out = 0;
    int kernel = 3, stride = 1, pad = 0;
    Act act = Act::LEAKY_RELU;

    // PyTorch's shape: [out, in, k, k] (Conv2d), [in, out, k, k] (ConvTranspose2d).
    std::vector<int64_t> weight_shape() const;
};

std::vector<GanLayer> upconv7_layers(const UpConv7Config& config);
std::vector<GanLayer> cunet_layers(const CUNetConfig& config);

// Input pixels each network consumes on every side (its unpadded convolutions' reach): the
// official programs pad the image by this much (waifu2x's and Real-CUGAN's "prepadding").
int upconv7_border();
int cunet_border(const CUNetConfig& config);

}  // namespace kiln::weights
