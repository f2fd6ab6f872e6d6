// Device helpers shared by the kernel families: block size, grid-stride indices and warp
// reductions. fp16
// loads and stores are in kernels/half_io.h (host-device).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/half_io.h"
#include "kernels/view_math.h"

namespace kiln::kernels {

inline constexpr int kBlockSize = 256;

__device__ __forceinline__ const __half* as_half(const uint16_t* p) {
    return reinterpret_cast<const __half*>(p);
}
__device__ __forceinline__ __half* as_half(uint16_t* p) {
    return reinterpret_cast<__half*>(p);
}

__device__ __forceinline__ int64_t global_thread() {
    return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() {
    return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// Butterfly reductions over a full warp: every lane gets the result (kernels/window_math.h
// models the order for the CPU tests).
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int delta = 16; delta > 0; delta /= 2)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, delta));
    return x;
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int delta = 16; delta > 0; delta /= 2)
        x += __shfl_xor_sync(0xffffffffu, x, delta);
    return x;
}

}  // namespace kiln::kernels
