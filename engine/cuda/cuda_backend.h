// The CUDA backend: cuDNN convolutions (fp16 NHWC, fp32 accumulation) and the hand-written
// kernels of kernels/ for every other op; a stream, a cuDNN handle and a stream-ordered device
// pool per execution context; one arena per plan from engine/graph/memory_plan.h.
#pragma once

#include <cstddef>
#include <memory>

#include "engine/backend.h"
#include "engine/cuda/conv_routing.h"

namespace kiln::engine::cuda {

// How each cuDNN convolution's forward algorithm is chosen when a plan is built.
enum class ConvAlgoSearch {
    HEURISTIC,  // cudnnGetConvolutionForwardAlgorithm_v7's order, first that launches
    TIMED,      // cudnnFindConvolutionForwardAlgorithmEx on the plan's buffers: fastest first
};

struct CudaBackendOptions {
    int device = 0;
    // Use cudnnConvolutionBiasActivationForward for bias + ReLU (else the epilogue kernel).
    bool fuse_bias_relu = true;
    // Largest cuDNN workspace an algorithm may ask for; its size counts in peak_bytes().
    size_t workspace_limit = size_t{64} << 20;
    // Capture each plan's ops once as a CUDA graph when it is built and replay it per run
    // (eager launches when capture fails, and for runs that ask for per-op times).
    bool cuda_graphs = true;
    // 1x1 stride-1 convolutions over whole buffers and token sequences (the UNet's linear
    // layers, engine/cuda/conv_routing.h) as cuBLASLt matmuls with the bias (+ReLU) fused;
    // cuDNN when cuBLASLt refuses one.
    bool cublaslt_linear = true;
    // cuBLASLt's workspace, allocated once per plan with a cuBLASLt linear (counted in
    // peak_bytes()); 0: NVIDIA's recommendation for the device (32 MiB from sm_90, else 4 MiB).
    size_t cublaslt_workspace = 0;
    // TIMED runs every algorithm once per convolution at plan time (slower compile; the
    // chosen algorithm and its time appear in describe()).
    ConvAlgoSearch conv_algo_search = ConvAlgoSearch::HEURISTIC;
    // Convolutions over channel views: CHOOSE times strided views against packed copies at
    // plan time (5 runs each, whole op) and keeps the faster; STRIDED or PACKED forces one.
    ConvViewChoice conv_views = ConvViewChoice::CHOOSE;
};

// Throws core::Error(UNSUPPORTED) in a build without CUDA or without code for the device's
// architecture (the message names the device's sm_XY and the binary's architectures),
// core::Error(INTERNAL) when the device or cuDNN cannot be initialised.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options = {});

}  // namespace kiln::engine::cuda
