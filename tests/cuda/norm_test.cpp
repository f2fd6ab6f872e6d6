// GroupNorm (+SiLU, +residual) on the GPU against a double reference on the host.
// fp16 bound: output values of order 1-3, stored in fp16: max abs 1e-2, NMSE 1e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#include "tests/cuda/cuda_device.h"

namespace kiln::kernels {
namespace {

struct NormCase {
    int h, w, c, c_total, c_offset, groups;
    bool silu, residual;
};

class GroupNormTest : public ::testing::TestWithParam<NormCase> {};

TEST_P(GroupNormTest, MatchesDoubleReference) {
    KILN_REQUIRE_CUDA();
    const NormCase tc = GetParam();
    const ViewDesc xd{tc.h, tc.w, tc.c, tc.c_total, tc.c_offset};
    const ViewDesc yd{tc.h, tc.w, tc.c, tc.c, 0};
    const size_t xn = static_cast<size_t>(xd.pixels() * tc.c_total);
    const size_t yn = static_cast<size_t>(yd.pixels() * tc.c);
    std::mt19937 rng(5);
    std::normal_distribution<float> dist(0.5f, 2.0f);
    std::vector<uint16_t> xh(xn), rh(yn);
    for (auto& v : xh)
        v = core::float_to_half(dist(rng));
    for (auto& v : rh)
        v = core::float_to_half(dist(rng) * 0.1f);
    std::vector<float> gamma(static_cast<size_t>(tc.c)), beta(gamma.size());
    for (size_t i = 0; i < gamma.size(); ++i) {
        gamma[i] = 0.5f + 0.01f * static_cast<float>(i);
        beta[i] = -0.2f + 0.005f * static_cast<float>(i);
    }
    uint16_t *dx, *dy, *dr;
    float *dg, *db;
    void* scratch;
    KILN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&dx), xn * 2));
    KILN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&dy), yn * 2));
    KILN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&dr), yn * 2));
    KILN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&dg), gamma.size() * 4));
    KILN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&db), beta.size() * 4));
    KILN_CUDA_CHECK(cudaMalloc(&scratch, group_norm_scratch_bytes(xd, tc.groups)));
    KILN_CUDA_CHECK(cudaMemcpy(dx, xh.data(), xn * 2, cudaMemcpyHostToDevice));
    KILN_CUDA_CHECK(cudaMemcpy(dr, rh.data(), yn * 2, cudaMemcpyHostToDevice));
    KILN_CUDA_CHECK(cudaMemcpy(dg, gamma.data(), gamma.size() * 4, cudaMemcpyHostToDevice));
    KILN_CUDA_CHECK(cudaMemcpy(db, beta.data(), beta.size() * 4, cudaMemcpyHostToDevice));
    GroupNormArgs args;
    args.groups = tc.groups;
    args.gamma = dg;
    args.beta = db;
    args.silu = tc.silu;
    if (tc.residual) {
        args.residual = {dr, yd};
        args.residual_scale = 0.7f;
    }
    group_norm({dx, xd}, {dy, yd}, args, scratch, nullptr);
    std::vector<uint16_t> yh(yn);
    KILN_CUDA_CHECK(cudaMemcpy(yh.data(), dy, yn * 2, cudaMemcpyDeviceToHost));
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(dr);
    cudaFree(dg);
    cudaFree(db);
    cudaFree(scratch);

    const int cpg = tc.c / tc.groups;
    double num = 0, den = 0, max_abs = 0;
    for (int g = 0; g < tc.groups; ++g) {
        double mean = 0, var = 0;
        const double n = static_cast<double>(xd.pixels() * cpg);
        for (int64_t p = 0; p < xd.pixels(); ++p)
            for (int ch = g * cpg; ch < (g + 1) * cpg; ++ch)
                mean += core::half_to_float(xh[static_cast<size_t>(xd.pixel_offset(p, ch))]);
        mean /= n;
        for (int64_t p = 0; p < xd.pixels(); ++p)
            for (int ch = g * cpg; ch < (g + 1) * cpg; ++ch) {
                const double d =
                    core::half_to_float(xh[static_cast<size_t>(xd.pixel_offset(p, ch))]) - mean;
                var += d * d;
            }
        var /= n;
        for (int64_t p = 0; p < xd.pixels(); ++p)
            for (int ch = g * cpg; ch < (g + 1) * cpg; ++ch) {
                const double x =
                    core::half_to_float(xh[static_cast<size_t>(xd.pixel_offset(p, ch))]);
                double t = (x - mean) / std::sqrt(var + 1e-5) * gamma[static_cast<size_t>(ch)] +
                           beta[static_cast<size_t>(ch)];
                if (tc.silu)
                    t = t / (1.0 + std::exp(-t));
                const auto yi = static_cast<size_t>(yd.pixel_offset(p, ch));
                if (tc.residual)
                    t = t * 0.7 + core::half_to_float(rh[yi]);
                const double got = core::half_to_float(yh[yi]);
                num += (got - t) * (got - t);
                den += t * t;
                max_abs = std::max(max_abs, std::abs(got - t));
            }
    }
    EXPECT_LE(num / den, 1e-6);
    EXPECT_LE(max_abs, 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes,
                         GroupNormTest,
                         ::testing::Values(NormCase{8, 8, 64, 64, 0, 32, false, false},
                                           NormCase{32, 32, 320, 320, 0, 32, true, true},
                                           NormCase{96, 64, 128, 128, 0, 32, true, false},
                                           NormCase{5, 7, 24, 40, 8, 4, true, true},
                                           NormCase{3, 3, 6, 9, 3, 2, false, true}));

}  // namespace
}  // namespace kiln::kernels
