// Resampling over fp16 NHWC views: nearest and bilinear upsampling by an integer factor,
// bicubic and bilinear resize to any size, pixel shuffle and unshuffle. One thread per output
// (pixel, chunk of V channels); the per-item work is kernels/resample_body.h (shared with the
// CPU tests).
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.h"
#include "kernels/resample_body.h"

namespace kiln::kernels {

namespace {

template <int kBlock, int kVec, ResampleMode kMode>
__global__ void __launch_bounds__(kBlock) resample_kernel(const ResampleParams p) {
    const int64_t work = p.dst_d.pixels() * p.chunks_per_pixel;
    for (int64_t k = global_thread(); k < work; k += grid_threads())
        resample_item<kVec, kMode>(p, k);
}

template <ResampleMode kMode>
void launch_resample(const DeviceView& src,
                     const DeviceView& dst,
                     int factor,
                     cudaStream_t stream,
                     const char* name) {
    const bool vector = resample_vectorized<kMode>(src, dst);
    const ResampleParams p = make_resample_params(src, dst, factor, vector);
    const Launch1D l = launch_1d(dst.desc.pixels() * p.chunks_per_pixel, kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    if (vector) {
        if constexpr (kMode != ResampleMode::SHUFFLE && kMode != ResampleMode::UNSHUFFLE)
            resample_kernel<kBlockSize, kHalfVector, kMode><<<l.grid, l.block, 0, stream>>>(p);
    } else {
        resample_kernel<kBlockSize, 1, kMode><<<l.grid, l.block, 0, stream>>>(p);
    }
    KILN_CUDA_CHECK_LAUNCH(name);
}

}  // namespace

void upsample_nearest(const DeviceView& src,
                      const DeviceView& dst,
                      int factor,
                      cudaStream_t stream) {
    launch_resample<ResampleMode::NEAREST>(src, dst, factor, stream, "upsample_nearest");
}

void upsample_bilinear(const DeviceView& src,
                       const DeviceView& dst,
                       int factor,
                       cudaStream_t stream) {
    launch_resample<ResampleMode::BILINEAR>(src, dst, factor, stream, "upsample_bilinear");
}

void resize_bicubic(const DeviceView& src, const DeviceView& dst, cudaStream_t stream) {
    launch_resample<ResampleMode::BICUBIC>(src, dst, 1, stream, "resize_bicubic");
}

void resize_bilinear(const DeviceView& src, const DeviceView& dst, cudaStream_t stream) {
    launch_resample<ResampleMode::RESIZE_BILINEAR>(src, dst, 1, stream, "resize_bilinear");
}

void pixel_shuffle(const DeviceView& src, const DeviceView& dst, int r, cudaStream_t stream) {
    launch_resample<ResampleMode::SHUFFLE>(src, dst, r, stream, "pixel_shuffle");
}

void pixel_unshuffle(const DeviceView& src, const DeviceView& dst, int r, cudaStream_t stream) {
    launch_resample<ResampleMode::UNSHUFFLE>(src, dst, r, stream, "pixel_unshuffle");
}

}  // namespace kiln::kernels
