// Which backend runs: --device auto|cpu|cuda, decided once per process with a reason that is
// logged in one line.
#pragma once

#include <memory>
#include <string>

#include "engine/backend.h"

namespace kiln::engine {

enum class DeviceRequest { AUTO, CPU, CUDA };

DeviceRequest parse_device_request(const std::string& text);  // throws INVALID_ARGUMENT

struct CudaProbe {
    bool compiled = false;  // built with the CUDA toolkit
    int device_count = 0;
    std::string status;  // what the runtime said
    // Device 0's compute capability against the architectures this binary was built for
    // (engine/cuda/arch_check.h): whether it has code for it, and the line saying so.
    bool arch_runs = true;
    std::string arch;
};

CudaProbe probe_cuda();

struct DeviceDecision {
    BackendKind kind = BackendKind::CPU;
    std::string reason;  // one line for the log
};

// Throws UNSUPPORTED when `cuda` is requested and cannot be had.
DeviceDecision choose_device(DeviceRequest request);

}  // namespace kiln::engine
