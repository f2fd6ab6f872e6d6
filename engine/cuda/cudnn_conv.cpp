#include "engine/cuda/cudnn_conv.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "engine/core/error.h"
#include "engine/core/half.h"
#include "engine/cuda/cudnn_check.h"
#include "engine/cuda/device_pool.h"
#include "kernels/cuda_check.h"

namespace kiln::engine::cuda {

namespace {

constexpr size_t kParamAlign = 256;

size_t append(std::vector<uint8_t>& blob, const void* data, size_t bytes) {
    const size_t offset = (blob.size() + kParamAlign - 1) / kParamAlign * kParamAlign;
    blob.resize(offset + bytes);
    std::memcpy(blob.data() + offset, data, bytes);
    return offset;
}

// A view as a cuDNN NCHW-indexed tensor with NHWC strides (batch 1): channel stride 1,
// pixel stride c_total. `packed` describes a dense [h, w, c] copy instead.
void set_view_desc(cudnnTensorDescriptor_t desc, const kernels::ViewDesc& v, bool packed) {
    const int stride = packed ? v.c : v.c_total;
    KILN_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(desc, CUDNN_DATA_HALF, 1, v.c, v.h, v.w,
                                                  v.h * v.w * stride, 1, v.w * stride, stride));
}

kernels::ViewDesc packed_desc(const kernels::ViewDesc& v) {
    return {v.h, v.w, v.c, v.c, 0};
}

size_t view_bytes(const kernels::ViewDesc& v) {
    return static_cast<size_t>(v.pixels()) * static_cast<size_t>(v.c) * sizeof(uint16_t);
}

}  // namespace

size_t pack_floats(const std::vector<float>& values, std::vector<uint8_t>& blob) {
    return append(blob, values.data(), values.size() * sizeof(float));
}

std::vector<uint16_t> to_krsc_half(const ConvWeights& weights) {
    const int o = weights.out_channels, i = weights.in_channels, k = weights.kernel;
    std::vector<uint16_t> out(static_cast<size_t>(o) * i * k * k);
    const std::vector<float>& w = *weights.weight;
    for (int oc = 0; oc < o; ++oc)
        for (int ic = 0; ic < i; ++ic)
            for (int y = 0; y < k; ++y)
                for (int x = 0; x < k; ++x) {
                    const size_t src = ((static_cast<size_t>(oc) * i + ic) * k + y) * k + x;
                    const size_t dst = ((static_cast<size_t>(oc) * k + y) * k + x) * i + ic;
                    out[dst] = float_to_half(w[src]);
                }
    return out;
}

ConvParamOffsets pack_conv_params(const ConvWeights& weights,
                                  const Epilogue& epilogue,
                                  std::vector<uint8_t>& blob) {
    ConvParamOffsets off;
    const std::vector<uint16_t> w = to_krsc_half(weights);
    off.weight = append(blob, w.data(), w.size() * sizeof(uint16_t));
    if (weights.bias) {
        off.has_bias = true;
        const std::vector<float>& b = *weights.bias;
        std::vector<uint16_t> bh(b.size());
        for (size_t k = 0; k < b.size(); ++k)
            bh[k] = float_to_half(b[k]);
        off.bias_half = append(blob, bh.data(), bh.size() * sizeof(uint16_t));
        off.bias_float = append(blob, b.data(), b.size() * sizeof(float));
    }
    if (epilogue.act == Activation::PRELU) {
        if (epilogue.prelu_slope.size() != static_cast<size_t>(weights.out_channels))
            throw Error(ErrorCode::INVALID_ARGUMENT, "PReLU slopes do not match the channels");
        off.has_prelu = true;
        off.prelu =
            append(blob, epilogue.prelu_slope.data(), epilogue.prelu_slope.size() * sizeof(float));
    }
    return off;
}

CudnnConv::CudnnConv(const ConvSetup& setup) : setup_(setup) {
    const Epilogue& e = *setup.epilogue;
    if (e.adds.size() > static_cast<size_t>(kernels::kMaxResidualAdds))
        throw Error(ErrorCode::UNSUPPORTED, "more than 4 residual adds in one epilogue");
    if (setup.residuals.size() != e.adds.size())
        throw Error(ErrorCode::INTERNAL, "residual views do not match the epilogue");
    try {
        configure();
    } catch (...) {
        destroy();
        throw;
    }
    // The graph's weights and epilogue are not kept: the plan may outlive the graph.
    stride_ = setup.weights->stride;
    setup_.weights = nullptr;
    setup_.epilogue = nullptr;
}

void CudnnConv::configure() {
    const ConvSetup& setup = setup_;
    const Epilogue& e = *setup.epilogue;
    const ConvWeights& w = *setup.weights;
    KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc_));
    KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_desc_));
    KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias_desc_));
    KILN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w_desc_));
    KILN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv_desc_));
    KILN_CUDNN_CHECK(cudnnCreateActivationDescriptor(&act_desc_));
    const int pad = w.kernel / 2;
    KILN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_desc_, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC,
                                                w.out_channels, w.in_channels, w.kernel, w.kernel));
    // Stride 2 for the UNet's downsamplers; the output view has the graph's output size
    // ((size + 2 pad - kernel) / stride + 1), which is what cuDNN computes for these settings.
    KILN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv_desc_, pad, pad, w.stride, w.stride, 1, 1,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    int n = 0, c = 0, out_h = 0, out_w = 0;
    set_view_desc(x_desc_, setup.src.desc, false);
    KILN_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv_desc_, x_desc_, w_desc_, &n, &c,
                                                           &out_h, &out_w));
    if (out_h != setup.dst.desc.h || out_w != setup.dst.desc.w || c != setup.dst.desc.c) {
        throw Error(ErrorCode::INTERNAL,
                    "convolution output " + std::to_string(out_h) + "x" + std::to_string(out_w) +
                        "x" + std::to_string(c) + " does not match the graph's " +
                        std::to_string(setup.dst.desc.h) + "x" + std::to_string(setup.dst.desc.w) +
                        "x" + std::to_string(setup.dst.desc.c));
    }
    KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv_desc_, CUDNN_TENSOR_OP_MATH));
    KILN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(bias_desc_, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1,
                                                w.out_channels, 1, 1));
    KILN_CUDNN_CHECK(cudnnSetActivationDescriptor(act_desc_, CUDNN_ACTIVATION_RELU,
                                                  CUDNN_NOT_PROPAGATE_NAN, 0.0));

    const ConvParamOffsets& off = setup.offsets;
    const bool want_fused =
        setup.fuse_bias_relu && e.act == Activation::RELU && e.adds.empty() && off.has_bias;
    if (!choose_algorithm(false, want_fused)) {
        if (!choose_algorithm(true, false)) {
            throw Error(ErrorCode::UNSUPPORTED, "cuDNN has no forward algorithm for convolution " +
                                                    std::to_string(w.in_channels) + "->" +
                                                    std::to_string(w.out_channels) + " k" +
                                                    std::to_string(w.kernel));
        }
        packed_ = true;
        scratch_bytes_ = view_bytes(setup.src.desc) + view_bytes(setup.dst.desc) + 256;
    }

    epilogue_args_.bias = off.has_bias && !fused_
                              ? reinterpret_cast<const float*>(setup.params + off.bias_float)
                              : nullptr;
    epilogue_args_.act = fused_ ? kernels::Act::NONE : static_cast<kernels::Act>(e.act);
    epilogue_args_.alpha = e.alpha;
    epilogue_args_.prelu_slope =
        off.has_prelu ? reinterpret_cast<const float*>(setup.params + off.prelu) : nullptr;
    epilogue_args_.num_adds = static_cast<int>(e.adds.size());
    for (size_t k = 0; k < e.adds.size(); ++k) {
        epilogue_args_.residual[k] = setup.residuals[k];
        epilogue_args_.scale[k] = e.adds[k].scale;
    }
    needs_epilogue_ = packed_ || epilogue_args_.bias || epilogue_args_.act != kernels::Act::NONE ||
                      !e.adds.empty();
}

CudnnConv::~CudnnConv() {
    destroy();
}

void CudnnConv::destroy() {
    if (act_desc_)
        cudnnDestroyActivationDescriptor(act_desc_);
    if (conv_desc_)
        cudnnDestroyConvolutionDescriptor(conv_desc_);
    if (w_desc_)
        cudnnDestroyFilterDescriptor(w_desc_);
    if (bias_desc_)
        cudnnDestroyTensorDescriptor(bias_desc_);
    if (y_desc_)
        cudnnDestroyTensorDescriptor(y_desc_);
    if (x_desc_)
        cudnnDestroyTensorDescriptor(x_desc_);
}

bool CudnnConv::candidates(const void* x,
                           void* y,
                           cudnnConvolutionFwdAlgoPerf_t* perf,
                           int* returned) {
    if (setup_.timed_search) {
        // Every algorithm once on the plan's own buffers (the trial launches below write them
        // too), with the largest workspace the plan allows; results sorted by time.
        try {
            DeviceBlock workspace(*setup_.pool, setup_.workspace_limit);
            const cudnnStatus_t st = cudnnFindConvolutionForwardAlgorithmEx(
                setup_.handle, x_desc_, x, w_desc_, setup_.params + setup_.offsets.weight,
                conv_desc_, y_desc_, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, returned, perf,
                workspace.get(), setup_.workspace_limit);
            if (st == CUDNN_STATUS_SUCCESS) {
                KILN_CUDA_CHECK(cudaGetLastError());
                return true;
            }
            search_note_ =
                std::string("timed search failed (") + cudnnGetErrorString(st) + "), heuristic";
        } catch (const Error& e) {
            if (e.code() != ErrorCode::OUT_OF_MEMORY)
                throw;
            search_note_ = "no memory for the timed search's workspace, heuristic";
        }
    }
    return cudnnGetConvolutionForwardAlgorithm_v7(setup_.handle, x_desc_, w_desc_, conv_desc_,
                                                  y_desc_, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                  returned, perf) == CUDNN_STATUS_SUCCESS;
}

bool CudnnConv::choose_algorithm(bool packed, bool want_fused) {
    set_view_desc(x_desc_, setup_.src.desc, packed);
    set_view_desc(y_desc_, setup_.dst.desc, packed);
    // Trial launches read and write the plan's own buffers (or packed temporaries): every
    // buffer is written by its producer before it is read at run time.
    DeviceBlock packed_tmp;
    const void* x = setup_.src.data + setup_.src.desc.c_offset;
    void* y = setup_.dst.data + setup_.dst.desc.c_offset;
    if (packed) {
        const size_t in_bytes = (view_bytes(setup_.src.desc) + 255) / 256 * 256;
        packed_tmp = DeviceBlock(*setup_.pool, in_bytes + view_bytes(setup_.dst.desc));
        x = packed_tmp.get();
        y = static_cast<uint8_t*>(packed_tmp.get()) + in_bytes;
    }
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    search_note_.clear();
    if (!candidates(x, y, perf, &returned))
        return false;
    const bool timed = setup_.timed_search && search_note_.empty();
    // Candidate order (heuristic or fastest first); the first one within the workspace limit
    // that launches. Tensor-op math may be downgraded for an algorithm: either is accepted
    // (fp32 accumulation).
    for (int k = 0; k < returned; ++k) {
        if (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > setup_.workspace_limit)
            continue;
        size_t bytes = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(setup_.handle, x_desc_, w_desc_, conv_desc_,
                                                    y_desc_, perf[k].algo,
                                                    &bytes) != CUDNN_STATUS_SUCCESS) {
            continue;
        }
        bytes = std::max(bytes, perf[k].memory);
        if (bytes > setup_.workspace_limit)
            continue;
        DeviceBlock workspace(*setup_.pool, bytes);
        for (const bool fused : {true, false}) {
            if (fused && !want_fused)
                continue;
            if (launch(perf[k].algo, fused, x, y, workspace.get(), bytes) == CUDNN_STATUS_SUCCESS) {
                KILN_CUDA_CHECK(cudaGetLastError());
                algo_ = perf[k].algo;
                workspace_bytes_ = bytes;
                fused_ = fused;
                timed_ms_ = timed ? perf[k].time : -1.0f;
                return true;
            }
        }
    }
    return false;
}

cudnnStatus_t CudnnConv::launch(cudnnConvolutionFwdAlgo_t algo,
                                bool fused,
                                const void* x,
                                void* y,
                                void* workspace,
                                size_t workspace_bytes) const {
    const float one = 1.0f, zero = 0.0f;
    const void* weight = setup_.params + setup_.offsets.weight;
    if (fused) {
        return cudnnConvolutionBiasActivationForward(
            setup_.handle, &one, x_desc_, x, w_desc_, weight, conv_desc_, algo, workspace,
            workspace_bytes, &zero, y_desc_, y, bias_desc_,
            setup_.params + setup_.offsets.bias_half, act_desc_, y_desc_, y);
    }
    return cudnnConvolutionForward(setup_.handle, &one, x_desc_, x, w_desc_, weight, conv_desc_,
                                   algo, workspace, workspace_bytes, &zero, y_desc_, y);
}

void CudnnConv::execute(cudaStream_t stream) const {
    kernels::DeviceView src = setup_.src, out = setup_.dst;
    if (packed_) {
        const size_t in_bytes = (view_bytes(src.desc) + 255) / 256 * 256;
        src = {reinterpret_cast<uint16_t*>(scratch_), packed_desc(setup_.src.desc)};
        out = {reinterpret_cast<uint16_t*>(scratch_ + in_bytes), packed_desc(setup_.dst.desc)};
        kernels::copy(setup_.src, src, stream);
    }
    const cudnnStatus_t status = launch(algo_, fused_, src.data + src.desc.c_offset,
                                        out.data + out.desc.c_offset, workspace_, workspace_bytes_);
    if (status != CUDNN_STATUS_SUCCESS)
        throw_cudnn_error(status, "convolution forward", __func__, __FILE__, __LINE__);
    if (needs_epilogue_)
        kernels::epilogue(out, setup_.dst, epilogue_args_, stream);
}

std::string CudnnConv::describe() const {
    static const char* const names[] = {
        "implicit_gemm", "implicit_precomp_gemm", "gemm", "direct", "fft", "fft_tiling",
        "winograd",      "winograd_nonfused"};
    const int a = static_cast<int>(algo_);
    std::string s =
        std::string("cudnn ") + (a >= 0 && a < 8 ? names[a] : "algo " + std::to_string(a)).c_str();
    if (timed_ms_ >= 0.0f) {
        char ms[32];
        std::snprintf(ms, sizeof ms, "%.4f", static_cast<double>(timed_ms_));
        s += std::string(" timed ") + ms + " ms";  // cuDNN's time, unfused forward
    }
    if (!search_note_.empty())
        s += " (" + search_note_ + ")";
    if (stride_ != 1)
        s += " stride " + std::to_string(stride_);
    s += " ws " + std::to_string(workspace_bytes_);
    if (packed_)
        s += " packed-copies";
    s += fused_ ? " +bias+relu fused" : needs_epilogue_ ? " +epilogue kernel" : "";
    return s;
}

}  // namespace kiln::engine::cuda
