// The CPU backend: oneDNN convolutions, OpenMP ops for the rest, one arena per plan.
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/cpu/onednn_conv.h"

namespace kiln::engine::cpu {

struct CpuBackendOptions {
    ConvAlgorithm conv_algorithm = ConvAlgorithm::AUTO;
    int block = 0;  // channel block of internal buffers: 0 picks 16 (AVX-512) or 8
};

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options = {});

// The channel block the CPU backend uses on this machine.
int native_channel_block();

}  // namespace kiln::engine::cpu
