// One convolution of a CUDA plan: cuDNN (legacy v7 API: fp16 NHWC tensors, fp32 compute,
// tensor-op math; grouped and depthwise convolutions through the group count) over channel
// views, its algorithm chosen once when the plan is built. Bias + ReLU are fused into
// cudnnConvolutionBiasActivationForward; any other epilogue (LeakyReLU, PReLU, residual adds)
// runs as one kernels::epilogue pass.
// Each candidate algorithm (cuDNN's heuristic order) is validated by one trial launch at plan
// time, so an unsupported stride or layout is found when the plan is built, never at run.
// With ConvSetup::timed_search the candidates come from cudnnFindConvolutionForwardAlgorithmEx
// instead (each algorithm timed once on the plan's own buffers, fastest first).
// Two paths over channel views (engine/cuda/conv_routing.h): strided descriptors that read and
// write the views in place, or packed scratch copies (counted in scratch_bytes()). Unless one
// is forced, both are timed at plan time, whole op, and the faster is kept; describe() names
// the path and both times.
// Views are described with 64-bit math (engine/cuda/tensor_dims.h); one that cuDNN's 32-bit
// descriptors cannot address is refused with core::Error(TOO_LARGE) when the plan is built.
#pragma once

#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/conv_routing.h"
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

// Device-side weight layout: OIHW fp32 -> KRSC fp16 (grouped: C = in / groups).
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
    ConvViewChoice views = ConvViewChoice::CHOOSE;  // strided views or packed copies
};

class CudnnConv {
  public:
    explicit CudnnConv(const ConvSetup& setup);
    ~CudnnConv();
    CudnnConv(const CudnnConv&) = delete;
    CudnnConv& operator=(const CudnnConv&) = delete;

    size_t workspace_bytes() const { return chosen_.workspace; }
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
    // One way to run the convolution: strided views or packed copies, an algorithm, bias +
    // ReLU fused or not, its workspace; the time cuDNN's search measured (timed only) and
    // why a timed search fell back to the heuristic.
    struct Variant {
        bool packed = false;
        cudnnConvolutionFwdAlgo_t algo{};
        bool fused = false;
        size_t workspace = 0;
        float search_ms = -1.0f;
        std::string note;
    };

    void configure();
    void destroy();
    void set_descriptors(bool packed);
    // The first candidate that launches, or nothing.
    bool choose_algorithm(bool packed, bool want_fused, Variant* out);
    // Candidates: timed (fastest first) or the heuristic's order; false when cuDNN fails.
    bool candidates(bool packed,
                    const void* x,
                    void* y,
                    cudnnConvolutionFwdAlgoPerf_t* perf,
                    int* returned,
                    std::string* note);
    kernels::EpilogueArgs epilogue_for(const Variant& v, bool* needs_epilogue) const;
    // Milliseconds per run of the whole op (copies and epilogue included) on temporary
    // workspace and scratch; negative when it does not run.
    float time_variant(const Variant& v);
    size_t packed_scratch_bytes() const;
    void run(const Variant& v,
             const kernels::EpilogueArgs& args,
             bool needs_epilogue,
             void* workspace,
             uint8_t* scratch,
             cudaStream_t stream) const;
    cudnnStatus_t launch(const Variant& v,
                         const void* x,
                         void* y,
                         void* workspace,
                         size_t workspace_bytes) const;

    ConvSetup setup_;
    // Index 0: the strided views; 1: packed copies.
    cudnnTensorDescriptor_t x_desc_[2] = {}, y_desc_[2] = {};
    cudnnTensorDescriptor_t bias_desc_ = nullptr;
    cudnnFilterDescriptor_t w_desc_ = nullptr;
    cudnnConvolutionDescriptor_t conv_desc_ = nullptr;
    cudnnActivationDescriptor_t act_desc_ = nullptr;
    Variant chosen_;
    bool needs_epilogue_ = false;
    bool whole_views_ = false;  // both views are whole buffers: the two paths are one
    int stride_ = 1;
    int pad_ = 0;
    int groups_ = 1;            // shown by describe() when not 1
    bool same_pad_ = true;      // padding kernel / 2 (not shown by describe())
    float strided_ms_ = -1.0f;  // whole-op times of the two paths (timed search only)
    float packed_ms_ = -1.0f;
    kernels::EpilogueArgs epilogue_args_;
    size_t scratch_bytes_ = 0;
    void* workspace_ = nullptr;
    uint8_t* scratch_ = nullptr;
};

}  // namespace kiln::engine::cuda
