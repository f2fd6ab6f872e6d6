// OmniSR's kernels against the host walks of the same host-device code
// (kernels/pool_body.h, resample_body.h, window_attention_body.h,
// channel_attention_body.h), at sizes beyond the op-case table's small rows
// (tests/ops/cases_omnisr.cpp, run against the CPU backend by op_cases_test.cpp):
// - max pooling 7/3 on every layout: bit-equal (a maximum of fp16 values is one of them);
// - bilinear resize to any size: within one fp16 rounding (the device may contract the
//   coordinate's multiply-add);
// - window attention (blocks and grid, with and without the position bias) and channel
//   attention (blocks, and grid groups of 1024 pixels: 16 chunks) at OmniSR's sizes (c 64,
//   4 heads, window 8) on channel views: within 2e-3 of the host walk (the device's expf
//   and fma differ from the host's by a few ulp before the fp16 rounding).
// Every test skips without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/channel_attention_body.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#include "kernels/pool_body.h"
#include "kernels/resample_body.h"
#include "kernels/window_attention_body.h"
#include "tests/cuda/cuda_device.h"
#include "tests/cuda/device_array.h"
#include "tests/ops/graph_cases.h"

namespace kiln::test {
namespace {

using kernels::DeviceView;
using kernels::ViewDesc;

constexpr uint16_t kSentinel = 0x7e00;

std::vector<uint16_t> random_halves(size_t n, uint32_t seed) {
    std::vector<uint16_t> out(n);
    const std::vector<float> v = random_vector(n, seed);
    for (size_t i = 0; i < n; ++i)
        out[i] = core::float_to_half(v[i]);
    return out;
}

size_t elements(const ViewDesc& d) {
    return static_cast<size_t>(d.pixels()) * static_cast<size_t>(d.c_total);
}

// Largest |a - b| over elements that are not sentinels in both; a sentinel in one only is a
// mismatch (infinity).
double max_abs_diff(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
    double worst = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i] == b[i])
            continue;
        if (a[i] == kSentinel || b[i] == kSentinel)
            return INFINITY;
        worst = std::max(worst, std::abs(static_cast<double>(core::half_to_float(a[i])) -
                                         core::half_to_float(b[i])));
    }
    return worst;
}

struct Layout {
    int c, c_total, c_offset;
};

TEST(OmnisrKernels, MaxPoolEqualsTheHostWalk) {
    KILN_REQUIRE_CUDA();
    for (const Layout l : {Layout{16, 16, 0}, Layout{16, 48, 16}, Layout{21, 32, 3}}) {
        const int h = 255, w = 191, k = 7, s = 3;
        const ViewDesc src_d{h, w, l.c, l.c_total, l.c_offset};
        const ViewDesc dst_d{kernels::max_pool_output_size(h, k, s),
                             kernels::max_pool_output_size(w, k, s), l.c, l.c_total, l.c_offset};
        const std::vector<uint16_t> src = random_halves(elements(src_d), 101);
        std::vector<uint16_t> want(elements(dst_d), kSentinel);
        kernels::max_pool_host({const_cast<uint16_t*>(src.data()), src_d}, {want.data(), dst_d}, k,
                               s);
        DeviceArray<uint16_t> d_src(src.size()), d_dst(want.size());
        d_src.upload(src);
        d_dst.upload(std::vector<uint16_t>(want.size(), kSentinel));
        kernels::max_pool({d_src.ptr, src_d}, {d_dst.ptr, dst_d}, k, s, nullptr);
        KILN_CUDA_CHECK(cudaDeviceSynchronize());
        EXPECT_EQ(d_dst.download(), want) << "c" << l.c << " of " << l.c_total;
    }
}

TEST(OmnisrKernels, ResizeBilinearMatchesTheHostWalk) {
    KILN_REQUIRE_CUDA();
    struct Size {
        int ih, iw, oh, ow;
    };
    for (const Layout l : {Layout{16, 16, 0}, Layout{16, 48, 16}, Layout{21, 32, 3}}) {
        for (const Size sz : {Size{40, 30, 256, 200}, Size{255, 191, 77, 300}}) {
            const ViewDesc src_d{sz.ih, sz.iw, l.c, l.c_total, l.c_offset};
            const ViewDesc dst_d{sz.oh, sz.ow, l.c, l.c_total, l.c_offset};
            const std::vector<uint16_t> src = random_halves(elements(src_d), 102);
            std::vector<uint16_t> want(elements(dst_d), kSentinel);
            kernels::resample_host<kernels::ResampleMode::RESIZE_BILINEAR>(
                {const_cast<uint16_t*>(src.data()), src_d}, {want.data(), dst_d}, 1);
            DeviceArray<uint16_t> d_src(src.size()), d_dst(want.size());
            d_src.upload(src);
            d_dst.upload(std::vector<uint16_t>(want.size(), kSentinel));
            kernels::resize_bilinear({d_src.ptr, src_d}, {d_dst.ptr, dst_d}, nullptr);
            KILN_CUDA_CHECK(cudaDeviceSynchronize());
            EXPECT_LE(max_abs_diff(d_dst.download(), want), 1e-3)
                << sz.ih << "x" << sz.iw << " -> " << sz.oh << "x" << sz.ow << " c" << l.c;
        }
    }
}

struct AttnCase {
    const char* name;
    int h, w;
    bool grid;
    int qkv_total, qkv_offset, out_total, out_offset;
};

// OmniSR: c 64 in 4 heads of 16, window 8; qkv of a 1x1 convolution (its own buffer) or a
// slice of a wider one, the output a slice. Channel attention also over a 256x256 grid
// (groups of 1024 pixels: 16 chunks); window attention's groups are 64 tokens at any size.
const AttnCase kWindowCases[] = {
    {"blocks 64x64 whole buffers", 64, 64, false, 192, 0, 64, 0},
    {"grid 64x64 whole buffers", 64, 64, true, 192, 0, 64, 0},
    {"grid 48x80 slices", 48, 80, true, 256, 64, 128, 32},
};
const AttnCase kChannelCases[] = {
    {"blocks 64x64 whole buffers", 64, 64, false, 192, 0, 64, 0},
    {"grid 64x64 whole buffers", 64, 64, true, 192, 0, 64, 0},
    {"blocks 48x80 slices", 48, 80, false, 256, 64, 128, 32},
    {"grid 256x256 (groups of 1024 pixels)", 256, 256, true, 192, 0, 64, 0},
};

TEST(OmnisrKernels, WindowAttentionMatchesTheHostWalk) {
    KILN_REQUIRE_CUDA();
    const int heads = 4, c = 64, ws = 8, n = ws * ws;
    const std::vector<float> bias = random_vector(static_cast<size_t>(heads) * n * n, 103, 2.0f);
    DeviceArray<float> d_bias(bias.size());
    d_bias.upload(bias);
    for (const AttnCase& t : kWindowCases) {
        const ViewDesc qkv_d{t.h, t.w, 3 * c, t.qkv_total, t.qkv_offset};
        const ViewDesc out_d{t.h, t.w, c, t.out_total, t.out_offset};
        const std::vector<uint16_t> qkv = random_halves(elements(qkv_d), 104);
        DeviceArray<uint16_t> d_qkv(qkv.size()), d_out(elements(out_d));
        d_qkv.upload(qkv);
        for (const bool with_bias : {true, false}) {
            kernels::WindowAttentionArgs args;
            args.window = ws;
            args.grid = t.grid;
            args.heads = heads;
            args.scale = 0.25f;
            args.bias = with_bias ? bias.data() : nullptr;
            std::vector<uint16_t> want(elements(out_d), kSentinel);
            const kernels::WindowAttnParams p = kernels::make_window_attn_params(
                {const_cast<uint16_t*>(qkv.data()), qkv_d}, {want.data(), out_d}, args);
            std::vector<float> smem(
                static_cast<size_t>(kernels::window_attention_smem_floats(p.n, p.d)));
            kernels::window_attention_host(p, smem.data());
            args.bias = with_bias ? d_bias.ptr : nullptr;
            d_out.upload(std::vector<uint16_t>(want.size(), kSentinel));
            kernels::window_attention({d_qkv.ptr, qkv_d}, {d_out.ptr, out_d}, args, nullptr);
            KILN_CUDA_CHECK(cudaDeviceSynchronize());
            EXPECT_LE(max_abs_diff(d_out.download(), want), 2e-3)
                << t.name << (with_bias ? " with bias" : "");
        }
    }
}

TEST(OmnisrKernels, ChannelAttentionMatchesTheHostWalk) {
    KILN_REQUIRE_CUDA();
    const int heads = 4, c = 64, ws = 8;
    const std::vector<float> temperature = {0.5f, 1.0f, 2.0f, 8.0f};
    DeviceArray<float> d_temperature(temperature.size());
    d_temperature.upload(temperature);
    for (const AttnCase& t : kChannelCases) {
        const ViewDesc qkv_d{t.h, t.w, 3 * c, t.qkv_total, t.qkv_offset};
        const ViewDesc out_d{t.h, t.w, c, t.out_total, t.out_offset};
        const std::vector<uint16_t> qkv = random_halves(elements(qkv_d), 105);
        kernels::ChannelAttentionArgs args;
        args.window = ws;
        args.grid = t.grid;
        args.heads = heads;
        args.temperature = temperature.data();
        std::vector<uint16_t> want(elements(out_d), kSentinel);
        const kernels::ChannelAttnParams p = kernels::make_channel_attn_params(
            {const_cast<uint16_t*>(qkv.data()), qkv_d}, {want.data(), out_d}, args);
        std::vector<float> smem(static_cast<size_t>(kernels::channel_attention_smem_floats(p.d)));
        kernels::channel_attention_host(p, smem.data());
        DeviceArray<uint16_t> d_qkv(qkv.size()), d_out(want.size());
        d_qkv.upload(qkv);
        d_out.upload(std::vector<uint16_t>(want.size(), kSentinel));
        args.temperature = d_temperature.ptr;
        kernels::channel_attention({d_qkv.ptr, qkv_d}, {d_out.ptr, out_d}, args, nullptr);
        KILN_CUDA_CHECK(cudaDeviceSynchronize());
        EXPECT_LE(max_abs_diff(d_out.download(), want), 2e-3) << t.name;
    }
}

}  // namespace
}  // namespace kiln::test
