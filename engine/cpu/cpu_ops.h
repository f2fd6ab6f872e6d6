// The CPU backend's non-convolution ops (OpenMP), over views in either layout. Each takes its
// views as (pointer to the buffer, layout) and writes only its output view.
#pragma once

#include <vector>

#include "engine/cpu/view_layout.h"
#include "engine/graph/graph.h"

namespace kiln::engine::cpu {

struct CpuView {
    float* buffer = nullptr;  // start of the whole buffer
    ViewLayout layout;
    // layout.channel_offsets(), built once with the plan so that running allocates nothing.
    const int64_t* coff = nullptr;

    float& at(int y, int x, int ch) const { return buffer[layout.offset(y, x, ch)]; }
};

// Clears the zero-padding channels of a blocked view's last block (no-op without padding).
void zero_padding(const CpuView& v, int threads);

// dst <- NHWC float [h, w, c].
void op_copy_in(const float* nhwc, const CpuView& dst, int threads);
// NHWC float [h, w, c] <- src.
void op_copy_out(const CpuView& src, float* nhwc, int threads);
void op_upsample_nearest(const CpuView& src, const CpuView& dst, int factor, int threads);
// PyTorch's bilinear resize to dst's size with align_corners = false (UPSAMPLE_BILINEAR and
// RESIZE_BILINEAR).
void op_resize_bilinear(const CpuView& src, const CpuView& dst, int threads);
// Bicubic resize to dst's size (kernels/resample_math.h: ncnn's and PyTorch's convention).
void op_resize_bicubic(const CpuView& src, const CpuView& dst, int threads);
void op_pixel_shuffle(const CpuView& src, const CpuView& dst, int r, int threads);
void op_pixel_unshuffle(const CpuView& src, const CpuView& dst, int r, int threads);
// dst = a * scale_a + b
void op_add(const CpuView& a, const CpuView& b, const CpuView& dst, float scale_a, int threads);

// In place on y: y = act(y); then y = y * add.scale + residual for each add.
struct EpilogueArgs {
    Activation act = Activation::NONE;
    float alpha = 0.0f;
    const std::vector<float>* prelu_slope = nullptr;
    std::vector<std::pair<CpuView, float>> adds;  // (residual, scale)
};
void op_epilogue(const CpuView& y, const EpilogueArgs& args, int threads);

}  // namespace kiln::engine::cpu
