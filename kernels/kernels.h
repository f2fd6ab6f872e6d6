// Entry points of the hand-written CUDA kernels. Each takes device views of fp16 NHWC
// buffers, enqueues its work on `stream` (no host synchronisation) and throws kiln::Error
// (kernels/cuda_check.h) when a launch fails. The math they share with the CPU side is in the
// *_math.h headers next to this one.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/activation_body.h"  // kMaxResidualAdds
#include "kernels/attention_math.h"
#include "kernels/pointwise_math.h"
#include "kernels/view_math.h"

namespace kiln::kernels {

// --- activation.cu ------------------------------------------------------------------------
// dst = act(src + bias); then dst = dst * scale[k] + residual[k] for each add. src may be
// dst (in place). All views have the same shape.
void epilogue(const DeviceView& src,
              const DeviceView& dst,
              const EpilogueArgs& args,
              cudaStream_t stream);

// --- elementwise.cu -----------------------------------------------------------------------
// dst = a * scale_a + b; b may be a [1, 1, c] view (added to every pixel of a).
void add(const DeviceView& a,
         const DeviceView& b,
         const DeviceView& dst,
         float scale_a,
         cudaStream_t stream);
// dst = src (between views of the same shape)
void copy(const DeviceView& src, const DeviceView& dst, cudaStream_t stream);
// x [h, w, 2c] -> dst [h, w, c]: x[.., :c] * gelu(x[.., c:]) (exact erf GELU).
void geglu(const DeviceView& x, const DeviceView& dst, cudaStream_t stream);

// --- resample.cu --------------------------------------------------------------------------
void upsample_nearest(const DeviceView& src,
                      const DeviceView& dst,
                      int factor,
                      cudaStream_t stream);
void upsample_bilinear(const DeviceView& src,
                       const DeviceView& dst,
                       int factor,
                       cudaStream_t stream);
// To dst's size: half-pixel centres, A = -0.75, edge clamp (kernels/resample_math.h).
void resize_bicubic(const DeviceView& src, const DeviceView& dst, cudaStream_t stream);
void pixel_shuffle(const DeviceView& src, const DeviceView& dst, int r, cudaStream_t stream);
void pixel_unshuffle(const DeviceView& src, const DeviceView& dst, int r, cudaStream_t stream);

// --- norm.cu ------------------------------------------------------------------------------
// GroupNorm over an NHWC view (batch 1): y = (x - mean_g) / sqrt(var_g + eps) * gamma + beta,
// then SiLU when `silu`, then y = y * residual_scale + residual when a residual is given.
// Three launches (partial Welford statistics, merge, apply), no host synchronisation.
struct GroupNormArgs {
    int groups = 32;
    float eps = 1e-5f;
    const float* gamma = nullptr;  // [c] fp32; null: 1
    const float* beta = nullptr;   // [c] fp32; null: 0
    bool silu = false;
    DeviceView residual;  // data null: none
    float residual_scale = 1.0f;
};
// Scratch the entry needs (device memory, 16-byte aligned), from the view's shape.
size_t group_norm_scratch_bytes(const ViewDesc& x, int groups);
void group_norm(const DeviceView& x,
                const DeviceView& y,
                const GroupNormArgs& args,
                void* scratch,
                cudaStream_t stream);

// LayerNorm per pixel over its c channels: y = (x - mean) / sqrt(var + eps) * gamma + beta,
// then SiLU when `silu`. One warp per pixel (Welford over the channels, shuffle merge); one
// launch. gamma and beta as in GroupNormArgs; groups and the residual are not used.
void layer_norm(const DeviceView& x,
                const DeviceView& y,
                const GroupNormArgs& args,
                cudaStream_t stream);

// --- attention.cu -------------------------------------------------------------------------
// Fused attention per head: o = softmax(q k^T * scale) v, fp16 in and out, fp32 math, online
// softmax over key tiles (kernels/attention_math.h). q and o: [h, w, c] views (h * w query
// tokens), k and v: [hk, wk, c] views (hk * wk key tokens); c = heads * head_dim, head-major.
// head_dim 1..kMaxAttentionHeadDim (attention_math.h); any token counts. One launch.
struct AttentionArgs {
    int heads = 1;
    float scale = 1.0f;
};
void attention(const DeviceView& q,
               const DeviceView& k,
               const DeviceView& v,
               const DeviceView& o,
               const AttentionArgs& args,
               cudaStream_t stream);

// --- image_io.cu --------------------------------------------------------------------------
// uint8 HWC (channels 3 or 4, `stride` bytes per row) -> the first `dst.c` channels as
// v / 255 * scale + offset. dst.c <= channels (RGBA feeds an RGB model by dropping alpha).
struct U8Image {
    uint8_t* data = nullptr;
    int h = 0, w = 0, channels = 0;
    int64_t stride = 0;
};
void u8_to_half(const U8Image& src,
                const DeviceView& dst,
                float scale,
                float offset,
                cudaStream_t stream);
// fp16 view -> uint8: clamp and floor(v * 255 + 0.5) after undoing the normalisation;
// channels beyond src.c (alpha) are set to 255.
void half_to_u8(const DeviceView& src,
                const U8Image& dst,
                float scale,
                float offset,
                cudaStream_t stream);
// Dense fp32 NHWC [h, w, c] <-> fp16 view (a plan's input and output).
void f32_to_half(const float* src, const DeviceView& dst, cudaStream_t stream);
void half_to_f32(const DeviceView& src, float* dst, cudaStream_t stream);

}  // namespace kiln::kernels
