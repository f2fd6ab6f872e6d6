// Vectorisable float math for the CPU backend's elementwise loops: exp, erf, reciprocal,
// SiLU and exact GELU written with plain arithmetic and integer bit tricks only (no library
// calls, no branches, no division), so that `#pragma omp simd` loops over them compile to
// SIMD code without -ffast-math. Accuracy against double (tests/cpu/diffusion_ops_test.cpp,
// measured): exp 8e-8 relative on [-87, 88] (inputs are clamped to it), erf 4.2e-7
// absolute, reciprocal 1.5e-7 relative, SiLU 2.3e-7 relative on [-80, 80].
#pragma once

#include <bit>
#include <cstdint>

// Hot loops are compiled for AVX-512, AVX2 and the baseline, chosen at load time:
// the build assumes no ISA beyond x86-64 (see the root CMakeLists.txt). Not under
// ThreadSanitizer: the dynamic loader runs the ifunc resolvers that choose a clone before
// TSan's runtime is up, and an instrumented resolver crashes the program at load.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define KILN_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_CPU_CLONES
#endif

namespace kiln::engine::cpu {

inline float clampf(float x, float lo, float hi) {
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

// e^x: Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, Cephes' degree-6 polynomial for
// e^r, 2^n assembled in the exponent bits.
inline float exp_approx(float x) {
    x = clampf(x, -87.0f, 88.0f);
    constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float fn = (x * 1.44269504088896341f + kMagic) - kMagic;
    float r = x - fn * 0.693359375f;
    r = r + fn * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const int32_t n = static_cast<int32_t>(fn);
    return p * std::bit_cast<float>((n + 127) << 23);
}

// 1 / y for normal y > 0 whose reciprocal is normal too: a first guess from the exponent bits
// (within 12.5%) and three Newton steps, each squaring the error (within 2 ulp). Vector division
// costs 10-16 cycles a vector on AVX-512; this costs six FMAs, and was the larger part of SiLU's
// and GELU's time.
inline float recip_approx(float y) {
    float r = std::bit_cast<float>(int32_t{0x7EF311C7} - std::bit_cast<int32_t>(y));
    r = r * (2.0f - y * r);
    r = r * (2.0f - y * r);
    r = r * (2.0f - y * r);
    return r;
}

// erf(x): a rational approximation odd/even in x on [-4, 4] (erf is +-1 in float beyond).
inline float erf_approx(float x) {
    x = clampf(x, -4.0f, 4.0f);
    const float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return -p * recip_approx(-q);  // q < 0 everywhere
}

// x * sigmoid(x); below x = -80 (where it is below 1e-33) sigmoid is held at e^-80 so that
// the reciprocal stays in the normal range.
inline float silu_approx(float x) {
    const float e = exp_approx(-x < 80.0f ? -x : 80.0f);
    return x * recip_approx(1.0f + e);
}

// PyTorch's F.gelu (the erf form).
inline float gelu_approx(float x) {
    return 0.5f * x * (1.0f + erf_approx(x * 0.70710678118654752f));
}

}  // namespace kiln::engine::cpu
