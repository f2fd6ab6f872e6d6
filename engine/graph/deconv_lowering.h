// A transposed convolution as a convolution, a pixel shuffle and a crop (the sub-pixel form):
// with s = stride and K = ceil(kernel / s), output phase (ry, rx) of the transposed
// convolution's full (unpadded) output at s q + r is a K x K convolution of the input with the
// weights taken every s taps from offset r, flipped. One convolution computes all s^2 phases
// as s^2 output-channel groups (padding K - 1 on every side gives q in [0, n + K - 1)); the
// pixel shuffle interleaves them; the crop removes the transposed convolution's padding.
// Backends run fast convolutions for it (1x1 for the UNets' 2x2 stride-2 ups, 2x2 for their
// 4x4 stride-2 pad-3 bottoms) and need no transposed-convolution kernel of their own.
#pragma once

#include "engine/graph/graph.h"

namespace kiln::engine {

struct SubPixelConv {
    ConvWeights conv;  // [out * s^2, in, K, K], padding K - 1; bias repeated per phase
    int factor = 1;    // the pixel shuffle: s
    int crop = 0;      // rows and columns removed before the output: the padding
    int out_h = 0, out_w = 0;
};

// `deconv`: weight [in, out, k, k] (PyTorch ConvTranspose2d), stride, padding(); the input is
// in_h x in_w. Output size (n - 1) s + k - 2 p, as the transposed convolution's.
SubPixelConv subpixel_conv_of(const ConvWeights& deconv, int in_h, int in_w);

}  // namespace kiln::engine
