// A float image in HWC order, the pipeline's working format.
#pragma once

#include <cstddef>
#include <vector>

namespace kiln::engine {

struct FloatImage {
    int h = 0, w = 0, c = 0;
    std::vector<float> data;

    FloatImage() = default;
    FloatImage(int height, int width, int channels)
        : h(height),
          w(width),
          c(channels),
          data(static_cast<std::size_t>(height) * static_cast<std::size_t>(width) *
               static_cast<std::size_t>(channels)) {}
    float* pixel(int y, int x) {
        return data.data() + (static_cast<std::size_t>(y) * static_cast<std::size_t>(w) +
                              static_cast<std::size_t>(x)) *
                                 static_cast<std::size_t>(c);
    }
    const float* pixel(int y, int x) const {
        return data.data() + (static_cast<std::size_t>(y) * static_cast<std::size_t>(w) +
                              static_cast<std::size_t>(x)) *
                                 static_cast<std::size_t>(c);
    }
};

// Pads by reflection (edge not repeated), `top/left` before and `bottom/right` after.
FloatImage reflect_pad(const FloatImage& in, int top, int bottom, int left, int right);
// Pads by repeating the edge pixels.
FloatImage replicate_pad(const FloatImage& in, int top, int bottom, int left, int right);
// Pads with zeros.
FloatImage zero_pad(const FloatImage& in, int top, int bottom, int left, int right);
// Bicubic resize to out_h x out_w (A = -0.75, half-pixel centres, edges clamped: ncnn's
// Interp and PyTorch's bicubic; kernels/resample_math.h's taps, as RESIZE_BICUBIC).
FloatImage resize_bicubic(const FloatImage& in, int out_h, int out_w);
// Rows [y0, y0+h) and columns [x0, x0+w).
FloatImage crop(const FloatImage& in, int y0, int x0, int h, int w);

}  // namespace kiln::engine
