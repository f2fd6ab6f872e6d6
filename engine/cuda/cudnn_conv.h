// One convolution of a CUDA plan: cuDNN (legacy v7 API: fp16 NHWC tensors, fp32 compute,
// tensor-op math) over channel views through strided descriptors, its algorithm chosen once
// when the plan is built. Bias + ReLU are fused into cudnnConvolutionBiasActivationForward;
// any other epilogue (LeakyReLU, PReLU, residual adds) runs as one kernels::epilogue pass.
// Each candidate algorithm (cuDNN's heuristic order) is validated by one trial launch at plan
// time, so an unsupported stride or layout is found when the plan is built, never at run.
// With ConvSetup::timed_search the candidates come from cudnnFindConvolutionForwardAlgorithmEx
// instead (each algorithm timed once on the plan's own buffers, fastest first).
// When no algorithm accepts the strided views, the convolution runs on packed scratch copies
// instead (counted in scratch_bytes()).
#pragma once

#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/graph/graph.h"
#include "kernels/kernels.h"

namespace kiln::engine::cuda {

// Byte offsets of one convolution's parameters in the plan's parameter block.
struct ConvParamOffsets {
    size_t weight = 0;      // fp16 [out][kh][kw][in] (KRSC)
    size_t bias_half = 0;   // fp16 [out] (for the fused cuDNN call)
    size_t bias_float = 0;  // fp32 [out] (for the epilogue kernel)
    size_t prelu = 0;       // fp32 [out]
    bool has_bias = false;
    bool has_prelu = false;
};

// Appends a convolution's parameters, converted, to `blob` (256-byte aligned pieces).
ConvParamOffsets pack_conv_params(const ConvWeights& weights,
                                  const Epilogue& epilogue,
                                  std::vector<uint8_t>& blob);

// Appends fp32 values (norm gamma and beta) to `blob`; returns their byte offset (256-byte
// aligned).
size_t pack_floats(const std::vector<float>& values, std::vector<uint8_t>& blob);

// Device-side weight layout: OIHW fp32 -> KRSC fp16.
std::vector<uint16_t> to_krsc_half(const ConvWeights& weights);

struct ConvSetup {
    cudnnHandle_t handle = nullptr;  // bound to the context's stream
    MemoryPool* pool = nullptr;      // the context's device pool (trial workspaces)
    const ConvWeights* weights = nullptr;
    const Epilogue* epilogue = nullptr;
    kernels::DeviceView src, dst;
    std::vector<kernels::DeviceView> residuals;  // one per epilogue add
    const uint8_t* params = nullptr;             // the plan's parameter block (device)
    ConvParamOffsets offsets;
    bool fuse_bias_relu = true;
    size_t workspace_limit = 0;
    // Candidates from cudnnFindConvolutionForwardAlgorithmEx (timed on the plan's buffers,
    // fastest first, a workspace of workspace_limit) instead of the heuristic's order.
    bool timed_search = false;
};

class CudnnConv {
  public:
    explicit CudnnConv(const ConvSetup& setup);
    ~CudnnConv();
    CudnnConv(const CudnnConv&) = delete;
    CudnnConv& operator=(const CudnnConv&) = delete;

    size_t workspace_bytes() const { return workspace_bytes_; }
    // Packed copies of input and output when the strided views are not supported.
    size_t scratch_bytes() const { return scratch_bytes_; }
    // Workspace and scratch are shared by the plan's convolutions (they run in order).
    void bind(void* workspace, void* scratch) {
        workspace_ = workspace;
        scratch_ = static_cast<uint8_t*>(scratch);
    }
    void execute(cudaStream_t stream) const;
    std::string describe() const;

  private:
    void configure();
    void destroy();
    bool choose_algorithm(bool packed, bool want_fused);
    // Candidates: timed (fastest first) or the heuristic's order; false when cuDNN fails.
    bool candidates(const void* x, void* y, cudnnConvolutionFwdAlgoPerf_t* perf, int* returned);
    cudnnStatus_t launch(cudnnConvolutionFwdAlgo_t algo,
                         bool fused,
                         const void* x,
                         void* y,
                         void* workspace,
                         size_t workspace_bytes) const;

    ConvSetup setup_;
    cudnnTensorDescriptor_t x_desc_ = nullptr, y_desc_ = nullptr, bias_desc_ = nullptr;
    cudnnFilterDescriptor_t w_desc_ = nullptr;
    cudnnConvolutionDescriptor_t conv_desc_ = nullptr;
    cudnnActivationDescriptor_t act_desc_ = nullptr;
    cudnnConvolutionFwdAlgo_t algo_{};
    bool packed_ = false;  // running on packed scratch copies
    bool fused_ = false;   // bias + ReLU inside cuDNN
    bool needs_epilogue_ = false;
    int stride_ = 1;
    float timed_ms_ = -1.0f;   // the chosen algorithm's time from the search (timed only)
    std::string search_note_;  // why a timed search fell back to the heuristic
    kernels::EpilogueArgs epilogue_args_;
    size_t workspace_bytes_ = 0;
    size_t scratch_bytes_ = 0;
    void* workspace_ = nullptr;
    uint8_t* scratch_ = nullptr;
};

}  // namespace kiln::engine::cuda
