// Device helpers shared by the kernel families: block size and grid-stride indices. fp16
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

}  // namespace kiln::kernels
