// CUDA probe of a CPU-only build.
#include "engine/device.h"

namespace kiln::engine {

CudaProbe probe_cuda() {
    CudaProbe probe;
    probe.status = "built without CUDA";
    return probe;
}

}  // namespace kiln::engine
