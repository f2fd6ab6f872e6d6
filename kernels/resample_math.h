// Sampling positions and weights shared by the CPU ops and the CUDA kernels.
#pragma once

#include <cmath>

#include "core/half.h"  // KILN_HD

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

// Nearest upsampling by an integer factor: the source index of output index d.
KILN_HD inline int nearest_source(int d, int factor) {
    return d / factor;
}

// Bilinear resampling, align_corners = false (PyTorch): the two source taps of output index d
// and the weight of the second.
struct LinearTaps {
    int i0 = 0, i1 = 0;
    float w1 = 0.0f;
};

// Resize to any size (F.interpolate(size=..., mode='bilinear'); RESIZE_BILINEAR): the taps
// of output index d along an axis of `in` source pixels resized to `out`. Source coordinate
// max(0, (d + 0.5) * in / out - 0.5) with the step in / out in fp32 (PyTorch's scale), i0
// its floor (at most in - 1), i1 = min(i0 + 1, in - 1), weight of i1 = src - i0: the CPU
// op's fp32 operations.
KILN_HD inline LinearTaps resize_linear_taps(int d, int in, int out) {
    const float step = static_cast<float>(in) / static_cast<float>(out);
    float f = (static_cast<float>(d) + 0.5f) * step - 0.5f;
    f = f > 0.0f ? f : 0.0f;
    LinearTaps t;
    const int i = static_cast<int>(f);
    t.i0 = i < in - 1 ? i : in - 1;
    t.i1 = t.i0 + 1 < in - 1 ? t.i0 + 1 : in - 1;
    t.w1 = f - static_cast<float>(t.i0);
    return t;
}

// Upsampling by an integer factor (UPSAMPLE_BILINEAR): the resize to in * factor, whose fp32
// step in / (in * factor) is exactly the rounded 1 / factor.
KILN_HD inline LinearTaps linear_taps(int d, int in, int factor) {
    return resize_linear_taps(d, in, in * factor);
}

// Pixel shuffle [h, w, c*r*r] -> [h*r, w*r, c]: output (y, x, ch) reads input
// (y / r, x / r, shuffle_source_channel(ch, y % r, x % r, r)).
KILN_HD inline int shuffle_source_channel(int ch, int i, int j, int r) {
    return (ch * r + i) * r + j;
}

// Pixel unshuffle [h*r, w*r, c] -> [h, w, c*r*r], the inverse: output channel oc of pixel
// (y, x) reads input (y * r + i, x * r + j, ch).
struct UnshuffleSource {
    int ch = 0, i = 0, j = 0;
};

KILN_HD inline UnshuffleSource unshuffle_source(int oc, int r) {
    UnshuffleSource s;
    s.j = oc % r;
    s.i = (oc / r) % r;
    s.ch = oc / (r * r);
    return s;
}

}  // namespace kiln::kernels
