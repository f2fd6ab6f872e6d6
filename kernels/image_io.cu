// Image I/O conversion on the GPU: uint8 HWC (RGB/RGBA) <-> fp16 NHWC views with
// normalisation, clamping and floor(v * 255 + 0.5) rounding, and dense fp32 NHWC <-> fp16
// views (a plan's input and output). One thread per element: these run once per image.
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.h"

namespace kiln::kernels {

namespace {

struct ImageParams {
    ViewDesc view_d;
    uint16_t* view;
    U8Image image;
    float* dense;  // fp32 [h, w, c]
    float scale, offset;
};

enum class Dir : int { U8_TO_HALF, HALF_TO_U8, F32_TO_HALF, HALF_TO_F32 };

template <int kBlock, Dir kDir>
__global__ void __launch_bounds__(kBlock) image_kernel(const ImageParams p) {
    const int c = kDir == Dir::HALF_TO_U8 ? p.image.channels : p.view_d.c;
    const int64_t work = p.view_d.pixels() * c;
    for (int64_t k = global_thread(); k < work; k += grid_threads()) {
        const int64_t pixel = k / c;
        const int ch = static_cast<int>(k - pixel * c);
        if constexpr (kDir == Dir::U8_TO_HALF || kDir == Dir::HALF_TO_U8) {
            const int y = static_cast<int>(pixel / p.view_d.w);
            const int x = static_cast<int>(pixel - static_cast<int64_t>(y) * p.view_d.w);
            uint8_t* px = p.image.data + y * p.image.stride + int64_t{x} * p.image.channels;
            if constexpr (kDir == Dir::U8_TO_HALF) {
                as_half(p.view)[p.view_d.pixel_offset(pixel, ch)] =
                    __float2half_rn(u8_to_value(px[ch], p.scale, p.offset));
            } else {
                px[ch] = ch < p.view_d.c
                             ? value_to_u8(
                                   __half2float(as_half(p.view)[p.view_d.pixel_offset(pixel, ch)]),
                                   p.scale, p.offset)
                             : uint8_t{255};
            }
        } else if constexpr (kDir == Dir::F32_TO_HALF) {
            as_half(p.view)[p.view_d.pixel_offset(pixel, ch)] = __float2half_rn(p.dense[k]);
        } else {
            p.dense[k] = __half2float(as_half(p.view)[p.view_d.pixel_offset(pixel, ch)]);
        }
    }
}

template <Dir kDir>
void launch_image(const ImageParams& p, cudaStream_t stream, const char* name) {
    const int c = kDir == Dir::HALF_TO_U8 ? p.image.channels : p.view_d.c;
    const Launch1D l = launch_1d(p.view_d.pixels() * c, kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    image_kernel<kBlockSize, kDir><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH(name);
}

}  // namespace

void u8_to_half(const U8Image& src,
                const DeviceView& dst,
                float scale,
                float offset,
                cudaStream_t stream) {
    const ImageParams p{dst.desc, dst.data, src, nullptr, scale, offset};
    launch_image<Dir::U8_TO_HALF>(p, stream, "u8_to_half");
}

void half_to_u8(const DeviceView& src,
                const U8Image& dst,
                float scale,
                float offset,
                cudaStream_t stream) {
    const ImageParams p{src.desc, src.data, dst, nullptr, scale, offset};
    launch_image<Dir::HALF_TO_U8>(p, stream, "half_to_u8");
}

void f32_to_half(const float* src, const DeviceView& dst, cudaStream_t stream) {
    const ImageParams p{dst.desc, dst.data, {}, const_cast<float*>(src), 1.0f, 0.0f};
    launch_image<Dir::F32_TO_HALF>(p, stream, "f32_to_half");
}

void half_to_f32(const DeviceView& src, float* dst, cudaStream_t stream) {
    const ImageParams p{src.desc, src.data, {}, dst, 1.0f, 0.0f};
    launch_image<Dir::HALF_TO_F32>(p, stream, "half_to_f32");
}

}  // namespace kiln::kernels
