// Channel attention over an fp16 qkv view (CHANNEL_ATTENTION: OmniSR's block and grid
// channel attention): per (pixel group, head), attention among the head's channels, each an
// L2-normalised vector over the group's pixels, fp32 math. The pixels are walked in chunks
// staged in shared memory, so a grid group of any size runs in one block. Kernel -> launcher
// -> entry; the phases and every thread's steps are kernels/channel_attention_body.h
// (CPU-tested through the same walk).
#include <string>

#include "core/error.h"
#include "kernels/channel_attention_body.h"
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.h"

namespace kiln::kernels {

namespace {

// Block (group, head): products and norms over the pixel chunks, the softmax rows, then the
// outputs over the pixel chunks again.
template <int kThreads>
__global__ void __launch_bounds__(kThreads) channel_attention_kernel(const ChannelAttnParams p) {
    extern __shared__ float smem[];
    const int g = static_cast<int>(blockIdx.x);
    const int head = static_cast<int>(blockIdx.y);
    const int tid = static_cast<int>(threadIdx.x);
    const ChannelSmem s = channel_smem(smem, p.d);
    const int items = channel_items(p.d);
    for (int t0 = 0; t0 < p.n; t0 += kChannelChunk) {
        const int count = min(kChannelChunk, p.n - t0);
        __syncthreads();  // the previous chunk is consumed
        for (int e = tid; e < count * p.d; e += kThreads)
            channel_load(p, g, head, t0, e, false, s);
        __syncthreads();
        for (int i = tid; i < items; i += kThreads)
            channel_accumulate(p, s, i, t0, count);
    }
    __syncthreads();  // every sum is complete
    for (int a = tid; a < p.d; a += kThreads)
        channel_softmax_row(p, s, head, a);
    for (int t0 = 0; t0 < p.n; t0 += kChannelChunk) {
        const int count = min(kChannelChunk, p.n - t0);
        __syncthreads();  // P is written; the previous chunk is consumed
        for (int e = tid; e < count * p.d; e += kThreads)
            channel_load(p, g, head, t0, e, true, s);
        __syncthreads();
        for (int e = tid; e < count * p.d; e += kThreads)
            channel_output(p, s, g, head, t0, e);
    }
}

void launch_channel_attention(const ChannelAttnParams& p, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(p.map.count()), static_cast<unsigned>(p.heads));
    channel_attention_kernel<kChannelAttentionThreads>
        <<<grid, kChannelAttentionThreads, channel_attention_smem_bytes(p.d), stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("channel_attention");
}

}  // namespace

void channel_attention(const DeviceView& qkv,
                       const DeviceView& out,
                       const ChannelAttentionArgs& args,
                       cudaStream_t stream) {
    const int c = out.desc.c;
    const int ws = args.window;
    if (args.heads <= 0 || c % args.heads != 0 || qkv.desc.c != 3 * c || ws <= 0 ||
        qkv.desc.h != out.desc.h || qkv.desc.w != out.desc.w || out.desc.h % ws != 0 ||
        out.desc.w % ws != 0 || !args.temperature) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "channel_attention: qkv must be [h, w, 3c] of out's [h, w, c], c a "
                          "multiple of the heads, h and w multiples of the window, and a "
                          "temperature per head given");
    }
    const int d = c / args.heads;
    if (!channel_attention_fits(d)) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "channel_attention: heads of " + std::to_string(d) +
                              " channels need more than 48 KiB of shared memory");
    }
    if (args.heads > 65535)
        throw core::Error(core::ErrorCode::UNSUPPORTED, "channel_attention: more than 65535 heads");
    if (out.desc.pixels() == 0 || c == 0)
        return;
    launch_channel_attention(make_channel_attn_params(qkv, out, args), stream);
}

}  // namespace kiln::kernels
