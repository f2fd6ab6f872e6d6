// The UNet generators' ops (waifu2x CUNet, Real-CUGAN) on the CUDA backend beyond the op-case
// table's small rows (tests/ops/cases_unet_gan.cpp, run by op_cases_test.cpp):
// - kernels against the host walk of the same per-element code (kernels/pool_body.h,
//   elementwise_body.h): global average pooling through one split and many (the table's maps
//   are too small for more than one), product with a [1, 1, c] gate, crops; bit-equal (the
//   same fp32 operations in the same order, one fp16 rounding);
// - a transposed convolution at a real size (2x2 stride 2, 64 -> 64 from a channel slice,
//   128x128: its sub-pixel 1x1 convolution to 256 channels and a pixel shuffle) on the
//   strided views, on packed copies, with the timed algorithm search and by default, against
//   the CPU backend; Real-CUGAN's 4x4 stride-2 pad-3 tail (a 2x2 convolution, shuffle, crop);
// - a squeeze-excitation block at 256x256 (pooling over 65536 pixels, many splits) against the
//   CPU backend;
// - a tiled CUNet sharing its SE means across tiles (Real-CUGAN's syncgap) against the CPU.
// Every test but the last skips without a device. Bounds as the table's (case_families.h).
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/pipeline/upscaler.h"
#include "kernels/cuda_check.h"
#include "kernels/elementwise_body.h"
#include "kernels/kernels.h"
#include "kernels/pool_body.h"
#include "tests/cuda/cuda_device.h"
#include "tests/cuda/device_array.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_builders.h"
#include "tests/ops/random_gan_models.h"

namespace kiln::test {
namespace {

using engine::Activation;
using engine::Graph;
using engine::ValueId;
using engine::cuda::ConvAlgoSearch;
using engine::cuda::ConvViewChoice;
using engine::cuda::CudaBackendOptions;
using kernels::DeviceView;
using kernels::ViewDesc;

// fp16 values uniform in [-1, 1] + offset.
std::vector<uint16_t> random_halves(size_t n, uint32_t seed, float offset = 0.0f) {
    std::vector<uint16_t> out(n);
    const std::vector<float> v = random_vector(n, seed);
    for (size_t i = 0; i < n; ++i)
        out[i] = core::float_to_half(v[i] + offset);
    return out;
}

struct PoolCase {
    int h, w, c, c_total, c_offset;
};

TEST(UnetGanKernels, GlobalAvgPoolEqualsTheHostWalk) {
    KILN_REQUIRE_CUDA();
    for (const PoolCase t :
         {PoolCase{13, 11, 3, 3, 0}, PoolCase{256, 256, 64, 64, 0}, PoolCase{301, 97, 33, 40, 7},
          PoolCase{1, 1, 20, 20, 0}, PoolCase{360, 640, 64, 128, 64}}) {
        const ViewDesc src_d{t.h, t.w, t.c, t.c_total, t.c_offset};
        const ViewDesc dst_d{1, 1, t.c, t.c, 0};
        const std::vector<uint16_t> src = random_halves(
            static_cast<size_t>(src_d.pixels()) * static_cast<size_t>(t.c_total), 70, 0.25f);
        const size_t scratch_bytes = kernels::global_avg_pool_scratch_bytes(src_d);
        std::vector<uint16_t> want(static_cast<size_t>(t.c));
        std::vector<float> host_partials(scratch_bytes / sizeof(float));
        kernels::global_avg_pool_host(
            kernels::make_pool_params({const_cast<uint16_t*>(src.data()), src_d},
                                      {want.data(), dst_d}, host_partials.data()));

        DeviceArray<uint16_t> d_src(src.size()), d_dst(want.size());
        DeviceArray<uint8_t> d_scratch(scratch_bytes);
        d_src.upload(src);
        kernels::global_avg_pool({d_src.ptr, src_d}, {d_dst.ptr, dst_d},
                                 scratch_bytes ? d_scratch.ptr : nullptr, nullptr);
        KILN_CUDA_CHECK(cudaDeviceSynchronize());
        EXPECT_EQ(d_dst.download(), want) << t.h << "x" << t.w << "x" << t.c << " splits "
                                          << kernels::pool_split(src_d.pixels(), t.c).splits;
    }
}

TEST(UnetGanKernels, MulAndCropEqualTheHostWalk) {
    KILN_REQUIRE_CUDA();
    // Channel layouts: packed, an aligned slice (8-wide), a misaligned slice (scalar).
    struct Layout {
        int c, c_total, c_offset;
    };
    for (const Layout l : {Layout{64, 64, 0}, Layout{32, 96, 32}, Layout{21, 29, 3}}) {
        const int h = 37, w = 53;
        const ViewDesc a_d{h, w, l.c, l.c_total, l.c_offset};
        const std::vector<uint16_t> a = random_halves(static_cast<size_t>(h) * w * l.c_total, 71);
        DeviceArray<uint16_t> d_a(a.size());
        d_a.upload(a);
        for (const bool broadcast : {false, true}) {
            const ViewDesc b_d{broadcast ? 1 : h, broadcast ? 1 : w, l.c, l.c_total, l.c_offset};
            const std::vector<uint16_t> b =
                random_halves(static_cast<size_t>(b_d.pixels()) * l.c_total, 72);
            std::vector<uint16_t> want(a.size(), 0x7e00);
            kernels::mul_host(kernels::make_add_params({const_cast<uint16_t*>(a.data()), a_d},
                                                       {const_cast<uint16_t*>(b.data()), b_d},
                                                       {want.data(), a_d}, 1.0f));
            DeviceArray<uint16_t> d_b(b.size()), d_out(a.size());
            d_b.upload(b);
            d_out.upload(std::vector<uint16_t>(a.size(), 0x7e00));
            kernels::mul({d_a.ptr, a_d}, {d_b.ptr, b_d}, {d_out.ptr, a_d}, nullptr);
            KILN_CUDA_CHECK(cudaDeviceSynchronize());
            EXPECT_EQ(d_out.download(), want) << "mul c" << l.c << " broadcast " << broadcast;
        }
        const int top = 5, left = 9, ch = 21, cw = 30;
        const ViewDesc crop_d{ch, cw, l.c, l.c_total, l.c_offset};
        const size_t crop_n = static_cast<size_t>(ch) * cw * l.c_total;
        std::vector<uint16_t> want(crop_n, 0x7e00);
        kernels::crop_host(kernels::make_crop_params({const_cast<uint16_t*>(a.data()), a_d},
                                                     {want.data(), crop_d}, top, left));
        DeviceArray<uint16_t> d_crop(crop_n);
        d_crop.upload(std::vector<uint16_t>(crop_n, 0x7e00));
        kernels::crop({d_a.ptr, a_d}, {d_crop.ptr, crop_d}, top, left, nullptr);
        KILN_CUDA_CHECK(cudaDeviceSynchronize());
        EXPECT_EQ(d_crop.download(), want) << "crop c" << l.c;
    }
}

// CUNet's upsampling: a 2x2 stride-2 transposed convolution (64 -> 64, LeakyReLU) reading a
// channel slice of a 128-channel buffer at 128x128.
Graph deconv_from_slice(int side) {
    Graph g;
    const ValueId x = g.input(side, side, 3);
    const ValueId wide = conv_layer(g, x, 128, 3, 80);
    engine::ConvWeights w = random_conv(64, 64, 2, 81);
    w.stride = 2;
    w.pad = 0;
    g.output(g.deconv2d("up", g.channels(wide, 64, 64), w, epilogue(Activation::LEAKY_RELU, 0.1f)));
    return g;
}

// Real-CUGAN's tail at a real size: 4x4 stride 2 pad 3, 64 -> 3.
Graph deconv_tail(int side) {
    Graph g;
    const ValueId x = g.input(side, side, 64);
    engine::ConvWeights w = random_conv(64, 3, 4, 82);
    w.stride = 2;
    w.pad = 3;
    g.output(g.deconv2d("tail", x, w, {}));
    return g;
}

// conv 3x3 -> squeeze-excitation (pool, 1x1 ReLU, 1x1 sigmoid, scale) -> crop 4.
Graph squeeze_excitation(int side, int c) {
    Graph g;
    const ValueId x = g.input(side, side, 3);
    const ValueId f = conv_layer(g, x, c, 3, 90);
    const ValueId pooled = g.global_avg_pool(f);
    const ValueId s =
        g.conv2d("se1", pooled, random_conv(c, c / 8, 1, 91), epilogue(Activation::RELU));
    const ValueId gate =
        g.conv2d("se2", s, random_conv(c / 8, c, 1, 92), epilogue(Activation::SIGMOID));
    g.output(g.crop(g.mul(f, gate), 4, 4, side - 8, side - 8));
    return g;
}

std::vector<float> run_on(engine::Backend& backend,
                          const Graph& g,
                          const std::vector<float>& input,
                          std::string* describe = nullptr,
                          size_t* peak = nullptr) {
    auto ctx = backend.create_context({});
    auto plan = backend.compile(g, *ctx);
    const engine::Value& out = g.value(g.output_value());
    std::vector<float> y(static_cast<size_t>(out.h) * out.w * out.c);
    plan->run(input.data(), y.data(), {});
    if (describe)
        *describe = plan->describe();
    if (peak)
        *peak = plan->peak_bytes();
    return y;
}

std::string line_of(const std::string& describe, const std::string& name) {
    std::istringstream in(describe);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(name + ": ", 0) == 0)
            return line;
    }
    return "";
}

TEST(UnetGanPlans, TransposedConvolutionOnEveryPathAt128) {
    KILN_REQUIRE_CUDA();
    const Graph g = deconv_from_slice(128);
    const auto input = random_vector(size_t{128} * 128 * 3, 83);
    const std::vector<float> want = run_on(*engine::cpu::make_cpu_backend(), g, input);
    struct Variant {
        const char* label;
        ConvAlgoSearch search;
        ConvViewChoice views;
        const char* expect;
    };
    for (const Variant& v :
         {Variant{"strided views", ConvAlgoSearch::HEURISTIC, ConvViewChoice::STRIDED,
                  "strided-views"},
          Variant{"packed copies", ConvAlgoSearch::HEURISTIC, ConvViewChoice::PACKED,
                  "packed-copies"},
          Variant{"timed algorithms", ConvAlgoSearch::TIMED, ConvViewChoice::CHOOSE, " vs packed "},
          Variant{"default", ConvAlgoSearch::HEURISTIC, ConvViewChoice::CHOOSE, " vs packed "}}) {
        CudaBackendOptions options;
        options.conv_algo_search = v.search;
        options.conv_views = v.views;
        auto cuda = engine::cuda::make_cuda_backend(options);
        std::string desc;
        size_t peak = 0;
        const std::vector<float> got = run_on(*cuda, g, input, &desc, &peak);
        const Comparison cmp = compare(got, want);
        EXPECT_TRUE(cmp.finite) << v.label;
        // Two layers (the 3x3 producer and the transposed convolution).
        EXPECT_LE(cmp.nmse, 4e-5) << v.label << "\n" << desc;
        EXPECT_LE(cmp.max_abs, 4e-2) << v.label;
        EXPECT_LE(peak, cuda->estimate_peak_bytes(g)) << v.label;
        const std::string line = line_of(desc, "up");
        EXPECT_NE(line.find(v.expect), std::string::npos) << v.label << ": " << line;
        if (v.search == ConvAlgoSearch::TIMED) {
            EXPECT_TRUE(line.find(" timed ") != std::string::npos ||
                        line.find("heuristic") != std::string::npos)
                << line;
        }
        std::printf("transposed convolution 128x128, %s:\n%s", v.label, desc.c_str());
    }
    // Real-CUGAN's 4x4 stride 2 pad 3 tail at 128x128 (output 252x252x3).
    const Graph tail = deconv_tail(128);
    const auto tail_in = random_vector(size_t{128} * 128 * 64, 84);
    auto cuda = engine::cuda::make_cuda_backend();
    std::string desc;
    const Comparison cmp = compare(run_on(*cuda, tail, tail_in, &desc),
                                   run_on(*engine::cpu::make_cpu_backend(), tail, tail_in));
    EXPECT_TRUE(cmp.finite);
    EXPECT_LE(cmp.nmse, 2e-5) << desc;
    EXPECT_LE(cmp.max_abs, 2e-2) << desc;
    std::printf("transposed convolution 4x4 stride 2 pad 3:\n%s", desc.c_str());
}

TEST(UnetGanPlans, SqueezeExcitationAt256) {
    KILN_REQUIRE_CUDA();
    const Graph g = squeeze_excitation(256, 64);
    const auto input = random_vector(size_t{256} * 256 * 3, 93);
    auto cuda = engine::cuda::make_cuda_backend();
    std::string desc;
    size_t peak = 0;
    const std::vector<float> got = run_on(*cuda, g, input, &desc, &peak);
    const std::vector<float> want = run_on(*engine::cpu::make_cpu_backend(), g, input);
    const Comparison cmp = compare(got, want);
    EXPECT_TRUE(cmp.finite);
    EXPECT_LE(cmp.nmse, 6e-5) << desc;  // three convolutions
    EXPECT_LE(cmp.max_abs, 2e-2) << desc;
    EXPECT_LE(peak, cuda->estimate_peak_bytes(g));
    EXPECT_GT(kernels::pool_split(int64_t{256} * 256, 64).splits, 1);  // the two-launch path
}

// Real-CUGAN's syncgap on the device: a tiled CUNet 2x (random weights, 3 x 3 tiles) in each
// mode against the CPU backend's run of the same tiles. It exercises pruned probe graphs
// with [1, 1, c] outputs and plans fed the shared means as extra inputs. Bound: fp16
// activations through 26 layers, and the means fed to every tile; not measured on a device
// yet.
TEST(UnetGanPlans, SyncgapTiledRunMatchesTheCpu) {
    KILN_REQUIRE_CUDA();
    const auto model = random_cunet(2);
    auto cpu = engine::cpu::make_cpu_backend();
    auto cpu_context = cpu->create_context({});
    auto cuda = engine::cuda::make_cuda_backend();
    auto cuda_context = cuda->create_context({});
    engine::Upscaler on_cpu(*model, *cpu, *cpu_context);
    engine::Upscaler on_gpu(*model, *cuda, *cuda_context);
    const engine::FloatImage img = random_rgb(72, 64, 97);
    engine::UpscaleOptions options;
    options.tile = 24;
    options.tile_pad = 8;
    for (const int mode : {0, 1, 2}) {
        options.syncgap = mode;
        const engine::FloatImage want = on_cpu.run(img, options);
        const engine::FloatImage got = on_gpu.run(img, options);
        const Comparison cmp = compare(got.data, want.data);
        std::printf("syncgap %d: NMSE %.3g, max abs %.3g\n", mode, cmp.nmse, cmp.max_abs);
        EXPECT_TRUE(cmp.finite) << mode;
        EXPECT_LE(cmp.nmse, 1e-4) << mode;
    }
}

// Without a GPU: the graphs above are valid (small sizes on the CPU backend).
TEST(UnetGanPlans, GraphsRunOnTheCpuBackend) {
    auto cpu = engine::cpu::make_cpu_backend();
    const auto finite = [](const std::vector<float>& y) {
        return !y.empty() && compare(y, y).finite;
    };
    EXPECT_TRUE(
        finite(run_on(*cpu, deconv_from_slice(12), random_vector(size_t{12} * 12 * 3, 94))));
    EXPECT_TRUE(finite(run_on(*cpu, deconv_tail(6), random_vector(size_t{6} * 6 * 64, 95))));
    EXPECT_TRUE(
        finite(run_on(*cpu, squeeze_excitation(16, 64), random_vector(size_t{16} * 16 * 3, 96))));
}

}  // namespace
}  // namespace kiln::test
