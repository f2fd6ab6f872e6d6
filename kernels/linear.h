// Linear layers (1x1 convolutions over token sequences, [L, 1, in] -> [L, 1, out]) through
// cuBLASLt: fp16 storage, fp32 compute, bias (+ReLU) fused as a cuBLASLt epilogue. Rows of
// the activations are pixels of NHWC views, so a view's channel slice is a matrix with a
// leading dimension of c_total: column-major B = x^T (in x L, ld = src c_total), A = the
// KRSC fp16 weight [out][in] read transposed, D = y^T (out x L, ld = dst c_total).
//
// The algorithm is chosen once (cuBLASLt's heuristic with the views' real alignments and the
// plan's workspace, engine/cuda/conv_routing.h sizes it) and validated by one trial launch;
// a constructor that throws leaves the caller on its other path (cuDNN).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "kernels/view_math.h"

namespace kiln::kernels {

struct LinearSetup {
    cublasLtHandle_t handle = nullptr;
    cudaStream_t stream = nullptr;     // for the trial launch
    DeviceView src, dst;               // same pixel count; channels in and out
    const uint16_t* weight = nullptr;  // fp16 [out][in] (device)
    const uint16_t* bias = nullptr;    // fp16 [out] (device), null: none
    bool relu = false;                 // fused after the bias (requires a bias)
    // The plan's cuBLASLt workspace (device), allocated once and shared by its linears,
    // which run one after another on the stream; null with 0 bytes: none.
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
};

class CublasLtLinear {
  public:
    // Throws core::Error(UNSUPPORTED) when cuBLASLt offers no algorithm that runs these views.
    explicit CublasLtLinear(const LinearSetup& setup);
    ~CublasLtLinear();
    CublasLtLinear(const CublasLtLinear&) = delete;
    CublasLtLinear& operator=(const CublasLtLinear&) = delete;

    void execute(cudaStream_t stream) const;
    std::string describe() const;

  private:
    void destroy();
    cublasStatus_t launch(cudaStream_t stream) const;

    LinearSetup setup_;
    cublasLtMatmulDesc_t op_ = nullptr;
    cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
    cublasLtMatmulAlgo_t algo_{};
    size_t algo_workspace_ = 0;  // what the chosen algorithm uses of the workspace
    int candidates_ = 0;
};

}  // namespace kiln::kernels
