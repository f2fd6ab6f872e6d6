#include "engine/device.h"

#include "core/error.h"

namespace kiln::engine {

DeviceRequest parse_device_request(const std::string& text) {
    if (text == "auto")
        return DeviceRequest::AUTO;
    if (text == "cpu")
        return DeviceRequest::CPU;
    if (text == "cuda")
        return DeviceRequest::CUDA;
    throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                      "unknown device '" + text + "' (expected auto, cpu or cuda)");
}

DeviceDecision choose_device(DeviceRequest request) {
    if (request == DeviceRequest::CPU)
        return {BackendKind::CPU, "CPU backend (--device cpu)"};
    const CudaProbe cuda = probe_cuda();
    std::string why;
    if (!cuda.compiled) {
        why = "this build has no CUDA support";
    } else if (cuda.device_count == 0) {
        why = "no CUDA device (" + cuda.status + ")";
    } else if (!cuda.arch_runs) {
        why = cuda.arch;  // names the device's sm_XY and the binary's architectures
    } else {
#if defined(KILN_CUDA_BACKEND)
        return {BackendKind::CUDA, "CUDA backend: " + std::to_string(cuda.device_count) +
                                       " CUDA device(s), using device 0" +
                                       (cuda.arch.empty() ? "" : " (" + cuda.arch + ")")};
#else
        why = std::to_string(cuda.device_count) +
              " CUDA device(s) found, but this build has no CUDA backend (cuDNN missing)";
#endif
    }
    if (request == DeviceRequest::CUDA) {
        throw core::Error(core::ErrorCode::UNSUPPORTED, "--device cuda: " + why);
    }
    return {BackendKind::CPU, "CPU backend: " + why};
}

}  // namespace kiln::engine
