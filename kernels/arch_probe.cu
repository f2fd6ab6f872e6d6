// Whether this binary carries a kernel image the current device can run: asked once at
// startup (engine/cuda/cuda_backend.cpp), so a build without code for the device's
// architecture fails with one clear message instead of at the first kernel launch.
#include "kernels/kernels.h"

namespace kiln::kernels {

namespace {

// Never launched: only its attributes are asked for, which needs an image for the device.
__global__ void arch_probe_kernel(int* out) {
    if (out)
        *out = 1;
}

}  // namespace

cudaError_t kernel_image_status() {
    cudaFuncAttributes attributes{};
    const cudaError_t err = cudaFuncGetAttributes(&attributes, arch_probe_kernel);
    if (err != cudaSuccess)
        cudaGetLastError();  // not sticky: clear it for the caller's next call
    return err;
}

}  // namespace kiln::kernels
