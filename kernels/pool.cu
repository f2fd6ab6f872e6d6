// Global average pooling over an fp16 NHWC view: [h, w, c] -> [1, 1, c] channel means, fp32
// sums in a fixed order (no atomics). Kernel -> launcher -> entry; the split, every thread's
// sum and the combination order are kernels/pool_body.h (shared with the CPU tests).
#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.h"
#include "kernels/pool_body.h"

namespace kiln::kernels {

namespace {

static_assert(kPoolLanes * kPoolRows == kBlockSize);

// Block (channel tile, split): each thread sums its pixels of one channel, row 0 adds the
// block's rows in order and writes the mean (one split) or the split's partial sum.
template <int kBlock>
__global__ void __launch_bounds__(kBlock) pool_sum_kernel(const PoolParams p) {
    const int tile = static_cast<int>(blockIdx.x);
    const int s = static_cast<int>(blockIdx.y);
    const int lane = static_cast<int>(threadIdx.x) % kPoolLanes;
    const int row = static_cast<int>(threadIdx.x) / kPoolLanes;
    __shared__ float rows[kPoolRows * kPoolLanes];
    rows[row * kPoolLanes + lane] = pool_thread_sum(p, tile, s, lane, row);
    __syncthreads();
    const int ch = tile * kPoolLanes + lane;
    if (row == 0 && ch < p.src_d.c)
        pool_block_result(p, s, ch, pool_combine_rows(rows + lane, kPoolLanes));
}

// One thread per channel: the splits' sums in order, divided by the pixel count.
template <int kBlock>
__global__ void __launch_bounds__(kBlock) pool_finish_kernel(const PoolParams p) {
    const int ch = static_cast<int>(blockIdx.x) * kBlock + static_cast<int>(threadIdx.x);
    if (ch < p.src_d.c)
        pool_finish_channel(p, ch);
}

void launch_pool(const PoolParams& p, cudaStream_t stream) {
    if (p.pixels == 0 || p.src_d.c == 0)
        return;
    const dim3 grid(static_cast<unsigned>(p.split.channel_tiles),
                    static_cast<unsigned>(p.split.splits));
    pool_sum_kernel<kBlockSize><<<grid, kBlockSize, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("global_avg_pool sum");
    if (p.split.splits > 1) {
        const Launch1D l = launch_1d(p.src_d.c, kBlockSize, kMaxBlocks);
        pool_finish_kernel<kBlockSize><<<l.grid, l.block, 0, stream>>>(p);
        KILN_CUDA_CHECK_LAUNCH("global_avg_pool finish");
    }
}

}  // namespace

void global_avg_pool(const DeviceView& src,
                     const DeviceView& dst,
                     void* scratch,
                     cudaStream_t stream) {
    if (dst.desc.c != src.desc.c || dst.desc.pixels() != 1)
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "global_avg_pool: the output must be [1, 1, c] of the input's channels");
    const PoolParams p = make_pool_params(src, dst, scratch);
    if (p.split.splits > 1 && !scratch)
        throw core::Error(core::ErrorCode::INTERNAL, "global_avg_pool: no scratch for the splits");
    launch_pool(p, stream);
}

}  // namespace kiln::kernels
