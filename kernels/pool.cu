// Pooling over fp16 NHWC views. Global average pooling: [h, w, c] -> [1, 1, c] channel means,
// fp32 sums in a fixed order (no atomics). Max pooling: k x k windows at stride s, no padding,
// one thread per output (pixel, chunk of V channels). Kernel -> launcher -> entry; the split,
// every thread's sum, the combination order and the pool windows are kernels/pool_body.h
// (shared with the CPU tests).
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

template <int kBlock, int kVec>
__global__ void __launch_bounds__(kBlock) max_pool_kernel(const MaxPoolParams p) {
    const int64_t work = p.dst_d.pixels() * p.chunks_per_pixel;
    for (int64_t k = global_thread(); k < work; k += grid_threads())
        max_pool_item<kVec>(p, k);
}

void launch_max_pool(const MaxPoolParams& p, bool vector, cudaStream_t stream) {
    const Launch1D l = launch_1d(p.dst_d.pixels() * p.chunks_per_pixel, kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    if (vector)
        max_pool_kernel<kBlockSize, kHalfVector><<<l.grid, l.block, 0, stream>>>(p);
    else
        max_pool_kernel<kBlockSize, 1><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("max_pool");
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

void max_pool(const DeviceView& src,
              const DeviceView& dst,
              int kernel,
              int stride,
              cudaStream_t stream) {
    if (kernel < 1 || stride < 1 || dst.desc.c != src.desc.c ||
        dst.desc.h != max_pool_output_size(src.desc.h, kernel, stride) ||
        dst.desc.w != max_pool_output_size(src.desc.w, kernel, stride)) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "max_pool: the output must be [(h - k) / s + 1, (w - k) / s + 1, c]");
    }
    const bool vector = max_pool_vectorized(src, dst);
    launch_max_pool(make_max_pool_params(src, dst, kernel, stride, vector), vector, stream);
}

}  // namespace kiln::kernels
