// CUDA runtime probe, compiled only when the toolkit is present: device count, and device 0's
// compute capability against the architectures the binary was built for.
#include <cuda_runtime_api.h>

#include <string>

#include "engine/cuda/arch_check.h"
#include "engine/device.h"

#ifndef KILN_CUDA_ARCHS
#define KILN_CUDA_ARCHS ""  // set by engine/CMakeLists.txt from CMAKE_CUDA_ARCHITECTURES
#endif

namespace kiln::engine {

CudaProbe probe_cuda() {
    CudaProbe probe;
    probe.compiled = true;
    int count = 0;  // left unwritten by the runtime when there is no driver
    const cudaError_t err = cudaGetDeviceCount(&count);
    probe.device_count = err == cudaSuccess ? count : 0;
    probe.status = err == cudaSuccess ? "ok" : cudaGetErrorString(err);
    if (err != cudaSuccess)
        cudaGetLastError();
    if (probe.device_count == 0)
        return probe;
    cudaDeviceProp props{};
    if (cudaGetDeviceProperties(&props, 0) != cudaSuccess) {
        cudaGetLastError();
        return probe;
    }
    const cuda::ArchVerdict verdict = cuda::check_cuda_arch(
        props.major, props.minor, KILN_CUDA_ARCHS, std::string("0 (") + props.name + ")");
    probe.arch_runs = verdict.runs;
    probe.arch = verdict.message;
    return probe;
}

}  // namespace kiln::engine
