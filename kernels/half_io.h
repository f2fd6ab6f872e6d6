// fp16 <-> fp32 loads and stores of V consecutive halves, host and device: on the device a
// 128-bit access for V == 8 (16-byte aligned) and __half2 conversions; on the host the
// bit-exact conversions of core/half.h (same rounding: nearest even). The kernel
// bodies (*_body.h) use these, so the CPU tests run the same per-element code as the GPU.
#pragma once

#include <cstdint>

#include "core/half.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

#if defined(__CUDA_ARCH__)
#define KILN_UNROLL _Pragma("unroll")
#else
#define KILN_UNROLL
#endif

namespace kiln::kernels {

template <int V>
KILN_HD inline void load_halves(const uint16_t* p, float (&out)[V]) {
#if defined(__CUDA_ARCH__)
    if constexpr (V == 8) {
        const uint4 raw = *reinterpret_cast<const uint4*>(p);
        const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
        KILN_UNROLL
        for (int i = 0; i < V / 2; ++i) {
            const float2 f = __half22float2(h2[i]);
            out[2 * i] = f.x;
            out[2 * i + 1] = f.y;
        }
    } else {
        const __half* h = reinterpret_cast<const __half*>(p);
        KILN_UNROLL
        for (int i = 0; i < V; ++i)
            out[i] = __half2float(h[i]);
    }
#else
    for (int i = 0; i < V; ++i)
        out[i] = core::half_to_float(p[i]);
#endif
}

template <int V>
KILN_HD inline void store_halves(uint16_t* p, const float (&in)[V]) {
#if defined(__CUDA_ARCH__)
    if constexpr (V == 8) {
        uint4 raw;
        __half2* h2 = reinterpret_cast<__half2*>(&raw);
        KILN_UNROLL
        for (int i = 0; i < V / 2; ++i)
            h2[i] = __floats2half2_rn(in[2 * i], in[2 * i + 1]);
        *reinterpret_cast<uint4*>(p) = raw;
    } else {
        __half* h = reinterpret_cast<__half*>(p);
        KILN_UNROLL
        for (int i = 0; i < V; ++i)
            h[i] = __float2half_rn(in[i]);
    }
#else
    for (int i = 0; i < V; ++i)
        p[i] = core::float_to_half(in[i]);
#endif
}

// V consecutive halves moved without conversion (copies and crops): one 128-bit access on the
// device for V == 8 (16-byte aligned).
template <int V>
KILN_HD inline void copy_halves(const uint16_t* src, uint16_t* dst) {
#if defined(__CUDA_ARCH__)
    if constexpr (V == 8) {
        *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
        KILN_UNROLL
        for (int i = 0; i < V; ++i)
            dst[i] = src[i];
    }
#else
    for (int i = 0; i < V; ++i)
        dst[i] = src[i];
#endif
}

}  // namespace kiln::kernels
