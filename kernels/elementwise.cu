// Elementwise ops over fp16 views: scaled add (dst = a * scale + b, b possibly [1, 1, c]),
// product (dst = a * b, same broadcast), view copy, crop (a spatial window) and GEGLU. The
// per-chunk work is kernels/elementwise_body.h (shared with the CPU tests).
#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/elementwise_body.h"
#include "kernels/kernels.h"

namespace kiln::kernels {

namespace {

template <int kBlock, int kVec, bool kHasB>
__global__ void __launch_bounds__(kBlock) add_kernel(const AddParams p) {
    const int64_t chunks = p.plan.chunks();
    for (int64_t k = global_thread(); k < chunks; k += grid_threads())
        add_chunk<kVec, kHasB>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    if (blockIdx.x == 0 && static_cast<int>(threadIdx.x) < p.plan.tail)
        add_chunk<1, kHasB>(p, 0, p.plan.tail_start() + threadIdx.x);
}

template <bool kHasB>
void launch_add(const AddParams& p, cudaStream_t stream) {
    const Launch1D l =
        launch_1d(p.plan.chunks() > 0 ? p.plan.chunks() : p.plan.tail, kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    if (p.plan.vec == kHalfVector)
        add_kernel<kBlockSize, kHalfVector, kHasB><<<l.grid, l.block, 0, stream>>>(p);
    else
        add_kernel<kBlockSize, 1, kHasB><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH(kHasB ? "add" : "copy");
}

template <int kBlock, int kVec>
__global__ void __launch_bounds__(kBlock) geglu_kernel(const AddParams p) {
    const int64_t chunks = p.plan.chunks();
    for (int64_t k = global_thread(); k < chunks; k += grid_threads())
        geglu_chunk<kVec>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    if (blockIdx.x == 0 && static_cast<int>(threadIdx.x) < p.plan.tail)
        geglu_chunk<1>(p, 0, p.plan.tail_start() + threadIdx.x);
}

void launch_geglu(const AddParams& p, cudaStream_t stream) {
    const Launch1D l =
        launch_1d(p.plan.chunks() > 0 ? p.plan.chunks() : p.plan.tail, kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    if (p.plan.vec == kHalfVector)
        geglu_kernel<kBlockSize, kHalfVector><<<l.grid, l.block, 0, stream>>>(p);
    else
        geglu_kernel<kBlockSize, 1><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("geglu");
}

template <int kBlock, int kVec>
__global__ void __launch_bounds__(kBlock) mul_kernel(const AddParams p) {
    const int64_t chunks = p.plan.chunks();
    for (int64_t k = global_thread(); k < chunks; k += grid_threads())
        mul_chunk<kVec>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    if (blockIdx.x == 0 && static_cast<int>(threadIdx.x) < p.plan.tail)
        mul_chunk<1>(p, 0, p.plan.tail_start() + threadIdx.x);
}

void launch_mul(const AddParams& p, cudaStream_t stream) {
    const Launch1D l =
        launch_1d(p.plan.chunks() > 0 ? p.plan.chunks() : p.plan.tail, kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    if (p.plan.vec == kHalfVector)
        mul_kernel<kBlockSize, kHalfVector><<<l.grid, l.block, 0, stream>>>(p);
    else
        mul_kernel<kBlockSize, 1><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("mul");
}

// Rows are dst's pixels (never one flat run): no scalar tail.
template <int kBlock, int kVec>
__global__ void __launch_bounds__(kBlock) crop_kernel(const CropParams p) {
    const int64_t chunks = p.plan.chunks();
    for (int64_t k = global_thread(); k < chunks; k += grid_threads())
        crop_chunk<kVec>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
}

void launch_crop(const CropParams& p, cudaStream_t stream) {
    const Launch1D l = launch_1d(p.plan.chunks(), kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    if (p.plan.vec == kHalfVector)
        crop_kernel<kBlockSize, kHalfVector><<<l.grid, l.block, 0, stream>>>(p);
    else
        crop_kernel<kBlockSize, 1><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("crop");
}

}  // namespace

void mul(const DeviceView& a, const DeviceView& b, const DeviceView& dst, cudaStream_t stream) {
    launch_mul(make_add_params(a, b, dst, 1.0f), stream);
}

void crop(const DeviceView& src, const DeviceView& dst, int top, int left, cudaStream_t stream) {
    if (top < 0 || left < 0 || top + dst.desc.h > src.desc.h || left + dst.desc.w > src.desc.w ||
        src.desc.c != dst.desc.c) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "crop: window outside the input or channel counts differ");
    }
    launch_crop(make_crop_params(src, dst, top, left), stream);
}

void geglu(const DeviceView& x, const DeviceView& dst, cudaStream_t stream) {
    launch_geglu(make_geglu_params(x, dst), stream);
}

void add(const DeviceView& a,
         const DeviceView& b,
         const DeviceView& dst,
         float scale_a,
         cudaStream_t stream) {
    launch_add<true>(make_add_params(a, b, dst, scale_a), stream);
}

void copy(const DeviceView& src, const DeviceView& dst, cudaStream_t stream) {
    launch_add<false>(make_add_params(src, {}, dst, 1.0f), stream);
}

}  // namespace kiln::kernels
