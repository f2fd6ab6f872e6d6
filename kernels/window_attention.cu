// Window attention over an fp16 qkv view (WINDOW_ATTENTION: OmniSR's block and grid
// attention): per (pixel group, head), softmax(scale q k^T + bias) v among the group's
// ws * ws tokens, fp32 math in shared memory. Kernel -> launcher -> entry; the pixel groups,
// the shared-memory layout and every lane's steps are kernels/window_attention_body.h
// (CPU-tested through the same walk).
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.h"
#include "kernels/window_attention_body.h"

namespace kiln::kernels {

namespace {

// Block (group, head): stage the group's q, k, v of the head, one barrier, then each warp
// its queries (no further block barrier: a warp's score row is its own).
template <int kThreads>
__global__ void __launch_bounds__(kThreads) window_attention_kernel(const WindowAttnParams p) {
    extern __shared__ float smem[];
    const int g = static_cast<int>(blockIdx.x);
    const int head = static_cast<int>(blockIdx.y);
    const int warp = static_cast<int>(threadIdx.x) / 32;
    const int lane = static_cast<int>(threadIdx.x) % 32;
    const WindowSmem s = window_smem(smem, p.n, p.d);
    for (int e = static_cast<int>(threadIdx.x); e < p.n * p.d; e += kThreads)
        window_load(p, g, head, e, s);
    __syncthreads();
    float* row = s.rows + warp * p.n;
    for (int t = warp; t < p.n; t += kThreads / 32) {
        const float m = warp_max(window_lane_scores(p, s, head, t, lane, row));
        const float sum = warp_sum(window_lane_weights(p.n, lane, m, row));
        __syncwarp();  // every lane's weights are in the row
        window_lane_output(p, s, g, head, t, lane, row, sum);
        __syncwarp();  // the row is read before the next query overwrites it
    }
}

void launch_window_attention(const WindowAttnParams& p, cudaStream_t stream) {
    static_assert(kWindowAttentionThreads == kWindowAttentionWarps * 32);
    const dim3 grid(static_cast<unsigned>(p.map.count()), static_cast<unsigned>(p.heads));
    window_attention_kernel<kWindowAttentionThreads>
        <<<grid, kWindowAttentionThreads, window_attention_smem_bytes(p.n, p.d), stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("window_attention");
}

}  // namespace

void window_attention(const DeviceView& qkv,
                      const DeviceView& out,
                      const WindowAttentionArgs& args,
                      cudaStream_t stream) {
    const int c = out.desc.c;
    const int ws = args.window;
    if (args.heads <= 0 || c % args.heads != 0 || qkv.desc.c != 3 * c || ws <= 0 ||
        qkv.desc.h != out.desc.h || qkv.desc.w != out.desc.w || out.desc.h % ws != 0 ||
        out.desc.w % ws != 0) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "window_attention: qkv must be [h, w, 3c] of out's [h, w, c], c a "
                          "multiple of the heads, h and w multiples of the window");
    }
    const int d = c / args.heads;
    if (!window_attention_fits(ws * ws, d)) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "window_attention: a window of " + std::to_string(ws * ws) +
                              " tokens with heads of " + std::to_string(d) +
                              " channels needs more than 48 KiB of shared memory");
    }
    if (args.heads > 65535)
        throw core::Error(core::ErrorCode::UNSUPPORTED, "window_attention: more than 65535 heads");
    if (out.desc.pixels() == 0 || c == 0)
        return;
    launch_window_attention(make_window_attn_params(qkv, out, args), stream);
}

}  // namespace kiln::kernels
