// Sampling positions and weights shared by the CPU ops and the CUDA kernels.
#pragma once

#include <cmath>

#include "engine/core/half.h"  // KILN_HD

namespace kiln::kernels {

// Bicubic taps of output index d along an axis of `in` source pixels resized to `out`:
// half-pixel centres (PyTorch align_corners=false, ncnn Interp mode 3), Keys' kernel with
// A = -0.75, taps first..first+3 clamped into [0, in) by the caller.
struct CubicTaps {
    int first = 0;
    float w[4] = {0, 0, 0, 0};
};

KILN_HD inline CubicTaps cubic_taps(int d, int in, int out) {
    constexpr float A = -0.75f;
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    const float f = (static_cast<float>(d) + 0.5f) * scale - 0.5f;
    const float base = floorf(f);
    const float t = f - base;
    CubicTaps taps;
    taps.first = static_cast<int>(base) - 1;
    // Distances to the taps are 1+t, t, 1-t, 2-t.
    const float x0 = 1.0f + t, x1 = t, x2 = 1.0f - t, x3 = 2.0f - t;
    taps.w[0] = ((A * x0 - 5.0f * A) * x0 + 8.0f * A) * x0 - 4.0f * A;
    taps.w[1] = ((A + 2.0f) * x1 - (A + 3.0f)) * x1 * x1 + 1.0f;
    taps.w[2] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
    taps.w[3] = ((A * x3 - 5.0f * A) * x3 + 8.0f * A) * x3 - 4.0f * A;
    return taps;
}

KILN_HD inline int clamp_index(int i, int n) {
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

}  // namespace kiln::kernels
