// CUDA runtime probe, compiled only when the toolkit is present.
#include <cuda_runtime_api.h>

#include "engine/device.h"

namespace kiln::engine {

CudaProbe probe_cuda() {
    CudaProbe probe;
    probe.compiled = true;
    int count = 0;  // left unwritten by the runtime when there is no driver
    const cudaError_t err = cudaGetDeviceCount(&count);
    probe.device_count = err == cudaSuccess ? count : 0;
    probe.status = err == cudaSuccess ? "ok" : cudaGetErrorString(err);
    return probe;
}

}  // namespace kiln::engine
