// Kernel entry points not reached through a graph: image I/O conversion (uint8 HWC <-> fp16
// views with normalisation, clamp and rounding), on a GPU, against the host math of
// kernels/pointwise_math.h (exact: the same fp32 operations and one fp16 rounding).
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#include "tests/cuda/cuda_device.h"
#include "tests/cuda/device_array.h"

namespace kiln::kernels {
namespace {

using test::DeviceArray;

TEST(ImageIo, RgbaRoundTripThroughAChannelSlice) {
    KILN_REQUIRE_CUDA();
    const int h = 13, w = 17, ch = 4;
    const int64_t stride = w * ch + 3;  // padded rows
    std::vector<uint8_t> img(static_cast<size_t>(h * stride));
    for (size_t i = 0; i < img.size(); ++i)
        img[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
    DeviceArray<uint8_t> d_img(img.size()), d_back(img.size());
    // The RGB channels go to channels [5, 8) of an 11-channel buffer.
    const ViewDesc desc{h, w, 3, 11, 5};
    DeviceArray<uint16_t> d_buf(static_cast<size_t>(h * w * 11));
    KILN_CUDA_CHECK(cudaMemcpy(d_img.ptr, img.data(), img.size(), cudaMemcpyHostToDevice));
    KILN_CUDA_CHECK(cudaMemset(d_back.ptr, 0, img.size()));
    const DeviceView view{d_buf.ptr, desc};
    for (const auto& [scale, offset] : {std::pair{1.0f, 0.0f}, std::pair{2.0f, -1.0f}}) {
        u8_to_half({d_img.ptr, h, w, ch, stride}, view, scale, offset, nullptr);
        std::vector<uint16_t> buf(static_cast<size_t>(h * w * 11));
        KILN_CUDA_CHECK(cudaMemcpy(buf.data(), d_buf.ptr, buf.size() * 2, cudaMemcpyDeviceToHost));
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int c = 0; c < 3; ++c) {
                    const uint8_t b = img[static_cast<size_t>(y * stride + x * ch + c)];
                    ASSERT_EQ(buf[static_cast<size_t>(desc.offset(y, x, c))],
                              core::float_to_half(u8_to_value(b, scale, offset)));
                }
        half_to_u8(view, {d_back.ptr, h, w, ch, stride}, scale, offset, nullptr);
        std::vector<uint8_t> back(img.size());
        KILN_CUDA_CHECK(cudaMemcpy(back.data(), d_back.ptr, back.size(), cudaMemcpyDeviceToHost));
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int c = 0; c < ch; ++c) {
                    const auto i = static_cast<size_t>(y * stride + x * ch + c);
                    ASSERT_EQ(back[i], c < 3 ? img[i] : 255) << y << " " << x << " " << c;
                }
    }
}

TEST(ImageIo, ClampsOutOfRangeValues) {
    KILN_REQUIRE_CUDA();
    const std::vector<float> values = {-1.0f, 0.0f,         0.5f,         1.0f,
                                       2.0f,  10.49f / 255, 10.51f / 255, 1e9f};
    const int n = static_cast<int>(values.size());
    DeviceArray<float> d_f(values.size());
    DeviceArray<uint16_t> d_h(values.size());
    DeviceArray<uint8_t> d_u(values.size() * 3);
    KILN_CUDA_CHECK(cudaMemcpy(d_f.ptr, values.data(), values.size() * 4, cudaMemcpyHostToDevice));
    const DeviceView view{d_h.ptr, {1, n, 1, 1, 0}};
    f32_to_half(d_f.ptr, view, nullptr);
    half_to_u8(view, {d_u.ptr, 1, n, 3, n * 3}, 1.0f, 0.0f, nullptr);
    std::vector<uint8_t> u(values.size() * 3);
    KILN_CUDA_CHECK(cudaMemcpy(u.data(), d_u.ptr, u.size(), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; ++i) {
        EXPECT_EQ(u[static_cast<size_t>(i * 3)],
                  value_to_u8(round_half(values[static_cast<size_t>(i)]), 1.0f, 0.0f));
    }
}

}  // namespace
}  // namespace kiln::kernels
