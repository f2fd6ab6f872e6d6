// The CUDA plan's choices at realistic sizes, against the CPU backend: a convolution over a
// channel slice (Real-ESRGAN's RRDB dense block at 128x128) on the strided views, on packed
// copies, and timed against each other (ConvAlgoSearch::TIMED); self-attention over 4096
// tokens (SD's 64x64 latent, 320 channels, 8 heads) between 1x1 projections over whole
// [h, w, c] maps, which cuBLASLt runs with its workspace. Also: the device pool's release
// threshold and out-of-memory trim, the refusal of views cuDNN's 32-bit descriptors cannot
// address, and the start-up architecture check. Every test skips without a device.
//
// Bounds as the op-case table's (tests/ops/case_families.h: convolutions NMSE 2e-5 per layer,
// max abs 2e-2; attention NMSE 1e-4, max abs 5e-3), widened for the chained layers.
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cudnn_conv.h"
#include "engine/device.h"
#include "tests/cuda/cuda_device.h"
#include "tests/ops/graph_cases.h"

namespace kiln::test {
namespace {

using engine::Activation;
using engine::Epilogue;
using engine::Graph;
using engine::ValueId;
using engine::cuda::ConvAlgoSearch;
using engine::cuda::ConvViewChoice;
using engine::cuda::CudaBackendOptions;

// One RRDB dense block (BasicSR's ResidualDenseBlock, 64 features, growth 32): five 3x3
// convolutions, each reading a growing channel slice of one 192-channel buffer.
Graph dense_block(int side) {
    Graph g;
    const ValueId x = g.input(side, side, 64);
    const ValueId cat = g.buffer(side, side, 64 + 4 * 32);
    g.conv2d("x", x, random_conv(64, 64, 1, 30), {}, g.channels(cat, 0, 64));
    Epilogue lrelu;
    lrelu.act = Activation::LEAKY_RELU;
    lrelu.alpha = 0.2f;
    for (int i = 0; i < 4; ++i) {
        g.conv2d("conv" + std::to_string(i + 1), g.channels(cat, 0, 64 + 32 * i),
                 random_conv(64 + 32 * i, 32, 3, 31 + static_cast<uint32_t>(i)), lrelu,
                 g.channels(cat, 64 + 32 * i, 32));
    }
    Epilogue residual;
    residual.adds.push_back({x, 1.0f});  // y * 1 + x; the block's 0.2 scale lives in the test
    g.output(g.conv2d("conv5", cat, random_conv(192, 64, 3, 35), residual));
    return g;
}

// Self-attention block of an SD 1.x transformer at 64x64: to_qkv (1x1, 320 -> 960), attention
// on channel slices of its output, to_out (1x1, +residual).
Graph attention_4096(int side, int channels, int heads) {
    Graph g;
    const ValueId x = g.input(side, side, channels);
    const ValueId qkv =
        g.conv2d("to_qkv", x, random_conv(channels, 3 * channels, 1, 40, false), {});
    const ValueId q = g.channels(qkv, 0, channels);
    const ValueId k = g.channels(qkv, channels, channels);
    const ValueId v = g.channels(qkv, 2 * channels, channels);
    const float scale = 1.0f / std::sqrt(static_cast<float>(channels / heads));
    const ValueId o = g.attention("attn", q, k, v, {heads, scale});
    Epilogue residual;
    residual.adds.push_back({x, 1.0f});
    g.output(g.conv2d("to_out", o, random_conv(channels, channels, 1, 41), residual));
    return g;
}

// One plan of `g` on a fresh context of `backend`, run once.
struct PlanRun {
    std::vector<float> output;
    std::string describe;
    size_t peak_bytes = 0;
};

PlanRun run_plan(engine::Backend& backend, const Graph& g, const std::vector<float>& input) {
    auto ctx = backend.create_context({});
    auto plan = backend.compile(g, *ctx);
    const engine::Value& out = g.value(g.output_value());
    PlanRun r;
    r.output.resize(static_cast<size_t>(out.h) * out.w * out.c);
    plan->run(input.data(), r.output.data(), {});
    r.describe = plan->describe();
    r.peak_bytes = plan->peak_bytes();
    return r;
}

std::vector<float> run_cpu(const Graph& g, const std::vector<float>& input) {
    return run_plan(*engine::cpu::make_cpu_backend(), g, input).output;
}

// The describe() line of op `name`.
std::string line_of(const std::string& describe, const std::string& name) {
    std::istringstream in(describe);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(name + ": ", 0) == 0)
            return line;
    }
    return "";
}

struct Variant {
    const char* label;
    ConvAlgoSearch search;
    ConvViewChoice views;
    const char* expect;  // in every slice convolution's describe() line
};

TEST(PlanChoices, DenseBlockSliceConvolutionsAt128) {
    KILN_REQUIRE_CUDA();
    const Graph g = dense_block(128);
    const auto input = random_vector(size_t{128} * 128 * 64, 50);
    const std::vector<float> want = run_cpu(g, input);
    for (const Variant& variant :
         {Variant{"strided views", ConvAlgoSearch::HEURISTIC, ConvViewChoice::STRIDED,
                  "strided-views"},
          Variant{"packed copies", ConvAlgoSearch::HEURISTIC, ConvViewChoice::PACKED,
                  "packed-copies"},
          Variant{"timed algorithms", ConvAlgoSearch::TIMED, ConvViewChoice::CHOOSE, " vs packed "},
          Variant{"default", ConvAlgoSearch::HEURISTIC, ConvViewChoice::CHOOSE, " vs packed "}}) {
        CudaBackendOptions options;
        options.conv_algo_search = variant.search;
        options.conv_views = variant.views;
        auto cuda = engine::cuda::make_cuda_backend(options);
        const PlanRun r = run_plan(*cuda, g, input);
        const Comparison cmp = compare(r.output, want);
        const std::string& desc = r.describe;
        EXPECT_TRUE(cmp.finite) << variant.label;
        EXPECT_LE(cmp.nmse, 1e-4) << variant.label << "\n" << desc;
        EXPECT_LE(cmp.max_abs, 4e-2) << variant.label;
        EXPECT_LE(r.peak_bytes, cuda->estimate_peak_bytes(g)) << variant.label;
        for (const char* conv : {"conv1", "conv2", "conv3", "conv4", "conv5"}) {
            const std::string line = line_of(desc, conv);
            EXPECT_NE(line.find("cudnn "), std::string::npos) << variant.label << ": " << line;
            // conv5 reads the whole buffer but writes a fresh one: no slice, no choice.
            if (std::string(conv) != "conv5") {
                EXPECT_NE(line.find(variant.expect), std::string::npos)
                    << variant.label << ": " << line;
            }
        }
        std::printf("dense block 128x128, %s:\n%s", variant.label, desc.c_str());
    }
}

TEST(PlanChoices, SelfAttentionOver4096TokensWithCublasLtProjections) {
    KILN_REQUIRE_CUDA();
    const Graph g = attention_4096(64, 320, 8);
    const auto input = random_vector(size_t{64} * 64 * 320, 51);
    const std::vector<float> want = run_cpu(g, input);
    auto cuda = engine::cuda::make_cuda_backend();
    const PlanRun r = run_plan(*cuda, g, input);
    const Comparison cmp = compare(r.output, want);
    const std::string& desc = r.describe;
    EXPECT_TRUE(cmp.finite);
    EXPECT_LE(cmp.nmse, 2e-4) << desc;
    EXPECT_LE(cmp.max_abs, 2e-2) << desc;
    EXPECT_LE(r.peak_bytes, cuda->estimate_peak_bytes(g));
    // 1x1 stride-1 over whole [64, 64, c] maps: cuBLASLt, with the plan's workspace.
    for (const char* linear : {"to_qkv", "to_out"}) {
        const std::string line = line_of(desc, linear);
        EXPECT_NE(line.find("cublaslt matmul"), std::string::npos) << line;
        EXPECT_NE(line.find(" ws "), std::string::npos) << line;
    }
    std::printf("attention 4096 tokens:\n%s", desc.c_str());
}

// Without a GPU: the graphs above are valid (small sizes on the CPU backend).
TEST(PlanChoices, GraphsRunOnTheCpuBackend) {
    const auto finite = [](const std::vector<float>& y) {
        return !y.empty() && compare(y, y).finite;
    };
    EXPECT_TRUE(finite(run_cpu(dense_block(12), random_vector(size_t{12} * 12 * 64, 52))));
    EXPECT_TRUE(finite(run_cpu(attention_4096(6, 32, 4), random_vector(size_t{6} * 6 * 32, 53))));
}

// The admission context (pool_keep_bytes 0) returns freed blocks to the device at the next
// synchronisation; a worker's context keeps them.
TEST(PlanChoices, AdmissionPoolKeepsNothingCached) {
    KILN_REQUIRE_CUDA();
    auto cuda = engine::cuda::make_cuda_backend();
    engine::ContextOptions admission;
    admission.pool_keep_bytes = 0;
    for (const bool keep : {false, true}) {
        auto ctx = cuda->create_context(keep ? engine::ContextOptions{} : admission);
        void* p = ctx->pool().allocate(size_t{64} << 20);
        ctx->pool().release(p, size_t{64} << 20);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        if (keep)
            EXPECT_GE(ctx->pool().bytes_cached(), size_t{64} << 20);
        else
            EXPECT_EQ(ctx->pool().bytes_cached(), 0u);
    }
}

// Another context's pool caches almost the whole device; an allocation that does not fit
// trims it and succeeds instead of failing OUT_OF_MEMORY.
TEST(PlanChoices, AllocationTrimsOtherPoolsUnderPressure) {
    KILN_REQUIRE_CUDA();
    auto cuda = engine::cuda::make_cuda_backend();
    auto hog = cuda->create_context({});
    auto ctx = cuda->create_context({});
    size_t free_bytes = 0, total = 0;
    ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
    const size_t big = free_bytes - (size_t{512} << 20);
    void* p = hog->pool().allocate(big);
    hog->pool().release(p, big);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ASSERT_GE(hog->pool().bytes_cached(), big);  // cached: the device is nearly full
    const size_t want = size_t{2} << 30;
    void* q = ctx->pool().allocate(want);
    EXPECT_NE(q, nullptr);
    EXPECT_LT(hog->pool().bytes_cached(), big);
    ctx->pool().release(q, want);
}

// A view of 2^31 elements: refused with TOO_LARGE before any descriptor or launch.
TEST(PlanChoices, ViewsOverCudnnLimitsAreRefused) {
    KILN_REQUIRE_CUDA();
    cudnnHandle_t handle = nullptr;
    ASSERT_EQ(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
    const engine::ConvWeights w = random_conv(8, 8, 3, 60);
    const Epilogue e;
    engine::cuda::ConvSetup setup;
    setup.handle = handle;
    setup.weights = &w;
    setup.epilogue = &e;
    setup.src.desc = {16384, 16384, 8, 8, 0};  // 2^31 elements
    setup.dst.desc = setup.src.desc;
    try {
        engine::cuda::CudnnConv conv(setup);
        ADD_FAILURE() << "a 2^31-element view was accepted";
    } catch (const core::Error& err) {
        EXPECT_EQ(err.code(), core::ErrorCode::TOO_LARGE) << err.what();
        EXPECT_NE(std::string(err.what()).find("32-bit"), std::string::npos) << err.what();
    }
    cudnnDestroy(handle);
}

// This binary has code for the device it runs on (else make_cuda_backend says which sm_XY
// is missing), and the probe's one log line names the device's architecture.
TEST(PlanChoices, ArchitectureCheckAtStartup) {
    KILN_REQUIRE_CUDA();
    const engine::CudaProbe probe = engine::probe_cuda();
    EXPECT_TRUE(probe.arch_runs) << probe.arch;
    EXPECT_NE(probe.arch.find("is sm_"), std::string::npos) << probe.arch;
    EXPECT_NO_THROW(engine::cuda::make_cuda_backend());
    std::printf("%s\n", engine::choose_device(engine::DeviceRequest::AUTO).reason.c_str());
}

}  // namespace
}  // namespace kiln::test
