// Entry points of the hand-written CUDA kernels. Each takes device views of fp16 NHWC
// buffers, enqueues its work on `stream` (no host synchronisation) and throws kiln::core::Error
// (kernels/cuda_check.h) when a launch fails. The math they share with the CPU side is in the
// *_math.h headers next to this one.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/activation_body.h"  // kMaxResidualAdds
#include "kernels/attention_math.h"
#include "kernels/channel_attention_body.h"  // ChannelAttentionArgs
#include "kernels/pointwise_math.h"
#include "kernels/pool_body.h"  // global_avg_pool_scratch_bytes
#include "kernels/tile_body.h"  // TileImage, TileScatterMode
#include "kernels/tile_math.h"
#include "kernels/view_math.h"
#include "kernels/window_attention_body.h"  // WindowAttentionArgs

namespace kiln::kernels {

// --- arch_probe.cu ------------------------------------------------------------------------
// cudaSuccess when the current device can run this binary's kernels;
// cudaErrorNoKernelImageForDevice (or cudaErrorInvalidDeviceFunction) when the build has no
// code for its architecture. Launches nothing.
cudaError_t kernel_image_status();

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
// dst = a * b; b may be a [1, 1, c] view (scales every pixel's channels).
void mul(const DeviceView& a, const DeviceView& b, const DeviceView& dst, cudaStream_t stream);
// dst = src (between views of the same shape)
void copy(const DeviceView& src, const DeviceView& dst, cudaStream_t stream);
// dst [h, w, c] = src[top : top + h, left : left + w] (the window inside src, same channels).
void crop(const DeviceView& src, const DeviceView& dst, int top, int left, cudaStream_t stream);
// x [h, w, 2c] -> dst [h, w, c]: x[.., :c] * gelu(x[.., c:]) (exact erf GELU).
void geglu(const DeviceView& x, const DeviceView& dst, cudaStream_t stream);

// --- pool.cu ------------------------------------------------------------------------------
// dst [1, 1, c] = the mean of every channel of src [h, w, c] (fp32 sums in a fixed order, no
// atomics: kernels/pool_body.h). scratch: global_avg_pool_scratch_bytes(src.desc) bytes of
// device memory (none needed, and null allowed, when that is 0). One or two launches.
void global_avg_pool(const DeviceView& src,
                     const DeviceView& dst,
                     void* scratch,
                     cudaStream_t stream);

// dst [(h - k) / s + 1, (w - k) / s + 1, c] = the maximum of each channel over the k x k
// windows of src [h, w, c] at stride s (no padding). One launch.
void max_pool(const DeviceView& src,
              const DeviceView& dst,
              int kernel,
              int stride,
              cudaStream_t stream);

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
// To dst's size (any): half-pixel centres (align_corners = false), edge clamp
// (kernels/resample_math.h: resize_linear_taps).
void resize_bilinear(const DeviceView& src, const DeviceView& dst, cudaStream_t stream);
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

// --- window_attention.cu ------------------------------------------------------------------
// WINDOW_ATTENTION (engine/graph/graph.h): qkv [h, w, 3c] -> out [h, w, c]; per pixel group
// (blocks or grid, kernels/window_math.h) and head, softmax(scale q k^T + bias) v among the
// group's ws * ws tokens. args.bias: fp32 [heads][n][n] device memory, or null. Throws
// UNSUPPORTED when a group's q, k and v do not fit 48 KiB of shared memory
// (window_attention_fits). One launch, one block per (group, head).
void window_attention(const DeviceView& qkv,
                      const DeviceView& out,
                      const WindowAttentionArgs& args,
                      cudaStream_t stream);

// --- channel_attention.cu -----------------------------------------------------------------
// CHANNEL_ATTENTION (engine/graph/graph.h): qkv [h, w, 3c] -> out [h, w, c]; per pixel group
// (blocks or grid) and head, attention among the head's d channels, each L2-normalised over
// the group's pixels (any number), times args.temperature[head] (fp32 [heads] device
// memory). Throws UNSUPPORTED when d does not fit (channel_attention_fits). One launch, one
// block per (group, head).
void channel_attention(const DeviceView& qkv,
                       const DeviceView& out,
                       const ChannelAttentionArgs& args,
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

// --- tile.cu ------------------------------------------------------------------------------
// Tiled upscaling on the device (geometry and weights: kernels/tile_math.h). Images are fp16
// or fp32 NHWC channel views (TileImage: exactly one pointer set).
// Gather: dst (the tile buffer, dst.desc.h x dst.desc.w) = src pixels [y0, y0 + h) x
// [x0, x0 + w); coordinates outside src follow `edge` (REFLECT: the pipeline's pre-pad, so a
// gather from the unpadded image at (window_begin - prepad) reads the padded image's window).
void tile_gather(const TileImage& src,
                 const TileImage& dst,
                 int y0,
                 int x0,
                 TileEdge edge,
                 cudaStream_t stream);
// Scatter one tile's output src (window * s pixels) into dst, whose pixel (0, 0) is output
// coordinate (origin_y, origin_x); only the tile's support (BlendAxis, plan_blend_axes) that
// falls inside dst is touched. COPY: dst = src wherever the tile's weight is not 0 (with
// blend 0 the core: the CPU pipeline's rule; exact). ACCUMULATE: dst += w_y * w_x * src, dst
// fp32 and zeroed before the first tile (cudaMemsetAsync); after every tile has been
// scattered (in order, one stream) dst holds the blended image: the weights sum to 1, no
// normalisation pass. Throws INVALID_ARGUMENT when src does not cover the support.
void tile_scatter(const TileImage& src,
                  const TileImage& dst,
                  const BlendAxis& ay,
                  const BlendAxis& ax,
                  int origin_y,
                  int origin_x,
                  TileScatterMode mode,
                  cudaStream_t stream);

}  // namespace kiln::kernels
