// The trained diffusion UNet and whole generations on the CUDA backend against the CPU
// backend (skipped without a device). core::Error metrics: one UNet evaluation, fp16 storage with
// fp32 accumulation through ~200 ops: NMSE <= 1e-4 and max abs <= 5e-2 of outputs of unit
// scale; a 10-step DDIM generation with guidance (errors feed back through the steps): pixels
// after diffusers' 8-bit rounding differ by at most 8 levels, NMSE of the floats <= 1e-3.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/diffusion/generation.h"
#include "engine/diffusion/philox_noise.h"
#include "tests/cuda/cuda_device.h"

namespace kiln::test {
namespace {

// $KILN_TEST_DATA overrides the build tree's path: the GPU check runs the binary elsewhere.
const std::filesystem::path kModel =
    std::filesystem::path(std::getenv("KILN_TEST_DATA") ? std::getenv("KILN_TEST_DATA")
                                                        : KILN_TEST_DATA) /
    "diffusion" / "fashion-unet";

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        num += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
        den += want[i] * static_cast<double>(want[i]);
    }
    return num / std::max(den, 1e-30);
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    float m = 0;
    for (size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

TEST(CudaUNet, EvaluationMatchesTheCpuBackend) {
    KILN_REQUIRE_CUDA();
    const auto model = engine::diffusion::load_diffusion_model(kModel);
    auto cpu = engine::cpu::make_cpu_backend();
    auto cpu_context = cpu->create_context({1});
    auto cuda = engine::cuda::make_cuda_backend();
    auto cuda_context = cuda->create_context({1});
    engine::diffusion::UNetRunner on_cpu(*model->unet, *cpu, *cpu_context, 32, 32, 4);
    engine::diffusion::UNetRunner on_gpu(*model->unet, *cuda, *cuda_context, 32, 32, 4);
    const int batch = 3;
    std::vector<float> x(32 * 32 * batch), ctx;
    for (size_t j = 0; j < x.size(); ++j)
        x[j] = engine::diffusion::philox_normal(5, 0, 0, j);
    for (const char* prompt : {"bag", "", "dress"}) {
        const auto e = model->encoder->encode(prompt);
        ctx.insert(ctx.end(), e.begin(), e.end());
    }
    for (float t : {999.0f, 500.0f, 1.0f}) {
        std::vector<float> want(x.size()), got(x.size());
        on_cpu.predict(x.data(), batch, t, ctx.data(), want.data(), {});
        on_gpu.predict(x.data(), batch, t, ctx.data(), got.data(), {});
        const double e = nmse(got, want);
        const float m = max_abs_diff(got, want);
        std::printf("t %.0f: NMSE %.3g, max abs %.3g\n", t, e, m);
        EXPECT_LE(e, 1e-4) << "t = " << t;
        EXPECT_LE(m, 5e-2f) << "t = " << t;
    }
}

TEST(CudaUNet, GenerationMatchesTheCpuBackend) {
    KILN_REQUIRE_CUDA();
    const auto model = engine::diffusion::load_diffusion_model(kModel);
    auto cpu = engine::cpu::make_cpu_backend();
    auto cpu_context = cpu->create_context({1});
    auto cuda = engine::cuda::make_cuda_backend();
    auto cuda_context = cuda->create_context({1});
    engine::diffusion::GenerateParams p;
    p.steps = 10;
    p.count = 2;
    p.seed = 9;
    const auto want = engine::diffusion::generate(*model, *cpu, *cpu_context, "sneaker", p, {});
    const auto got = engine::diffusion::generate(*model, *cuda, *cuda_context, "sneaker", p, {});
    EXPECT_LE(nmse(got.data, want.data), 1e-3);
    const auto a = engine::diffusion::to_uint8(got.data.data(), got.data.size());
    const auto b = engine::diffusion::to_uint8(want.data.data(), want.data.size());
    int worst = 0;
    for (size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::abs(int{a[i]} - int{b[i]}));
    EXPECT_LE(worst, 8);
}

}  // namespace
}  // namespace kiln::test
