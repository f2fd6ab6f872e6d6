#include "engine/cuda/cudnn_conv.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "engine/cuda/conv_routing.h"
#include "engine/cuda/cudnn_check.h"
#include "engine/cuda/tensor_dims.h"
#include "engine/pool_block.h"
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
// pixel stride c_total. `packed` describes a dense [h, w, c] copy instead. The caller has
// checked that the figures fit cuDNN's ints (cudnn_view_fits).
void set_view_desc(cudnnTensorDescriptor_t desc, const CudnnViewDims& d) {
    KILN_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(
        desc, CUDNN_DATA_HALF, 1, static_cast<int>(d.c), static_cast<int>(d.h),
        static_cast<int>(d.w), static_cast<int>(d.n_stride), static_cast<int>(d.c_stride),
        static_cast<int>(d.h_stride), static_cast<int>(d.w_stride)));
}

kernels::ViewDesc packed_desc(const kernels::ViewDesc& v) {
    return {v.h, v.w, v.c, v.c, 0};
}

size_t align256(size_t n) {
    return (n + 255) / 256 * 256;
}

// Creates and destroys a pair of events for timing at plan time.
struct EventPair {
    cudaEvent_t start = nullptr, stop = nullptr;
    EventPair() {
        KILN_CUDA_CHECK(cudaEventCreate(&start));
        if (cudaEventCreate(&stop) != cudaSuccess) {
            cudaEventDestroy(start);
            throw core::Error(core::ErrorCode::INTERNAL, "cudaEventCreate failed");
        }
    }
    ~EventPair() {
        cudaEventDestroy(stop);
        cudaEventDestroy(start);
    }
    EventPair(const EventPair&) = delete;
    EventPair& operator=(const EventPair&) = delete;
};

}  // namespace

size_t pack_floats(const std::vector<float>& values, std::vector<uint8_t>& blob) {
    return append(blob, values.data(), values.size() * sizeof(float));
}

std::vector<uint16_t> to_krsc_half(const ConvWeights& weights) {
    // Grouped: [out, in / groups, k, k] -> [out][k][k][in / groups] (cuDNN's grouped filter).
    const int o = weights.out_channels, i = weights.in_channels / weights.groups;
    const int k = weights.kernel;
    std::vector<uint16_t> out(static_cast<size_t>(o) * i * k * k);
    const std::vector<float>& w = *weights.weight;
    for (int oc = 0; oc < o; ++oc)
        for (int ic = 0; ic < i; ++ic)
            for (int y = 0; y < k; ++y)
                for (int x = 0; x < k; ++x) {
                    const size_t src = ((static_cast<size_t>(oc) * i + ic) * k + y) * k + x;
                    const size_t dst = ((static_cast<size_t>(oc) * k + y) * k + x) * i + ic;
                    out[dst] = core::float_to_half(w[src]);
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
            bh[k] = core::float_to_half(b[k]);
        off.bias_half = append(blob, bh.data(), bh.size() * sizeof(uint16_t));
        off.bias_float = append(blob, b.data(), b.size() * sizeof(float));
    }
    if (epilogue.act == Activation::PRELU) {
        if (epilogue.prelu_slope.size() != static_cast<size_t>(weights.out_channels))
            throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                              "PReLU slopes do not match the channels");
        off.has_prelu = true;
        off.prelu =
            append(blob, epilogue.prelu_slope.data(), epilogue.prelu_slope.size() * sizeof(float));
    }
    return off;
}

CudnnConv::CudnnConv(const ConvSetup& setup) : setup_(setup) {
    const Epilogue& e = *setup.epilogue;
    if (e.adds.size() > static_cast<size_t>(kernels::kMaxResidualAdds))
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "more than 4 residual adds in one epilogue");
    if (setup.residuals.size() != e.adds.size())
        throw core::Error(core::ErrorCode::INTERNAL, "residual views do not match the epilogue");
    try {
        configure();
    } catch (...) {
        destroy();
        throw;
    }
    // The graph's weights and epilogue are not kept: the plan may outlive the graph.
    stride_ = setup.weights->stride;
    groups_ = setup.weights->groups;
    pad_ = setup.weights->padding();
    same_pad_ = pad_ == setup.weights->kernel / 2;
    setup_.weights = nullptr;
    setup_.epilogue = nullptr;
}

void CudnnConv::configure() {
    const ConvSetup& setup = setup_;
    const Epilogue& e = *setup.epilogue;
    const ConvWeights& w = *setup.weights;
    for (int k = 0; k < 2; ++k) {
        KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc_[k]));
        KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_desc_[k]));
    }
    KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias_desc_));
    KILN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w_desc_));
    KILN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv_desc_));
    KILN_CUDNN_CHECK(cudnnCreateActivationDescriptor(&act_desc_));
    const int pad = w.padding();
    if (w.groups < 1 || w.in_channels % w.groups != 0 || w.out_channels % w.groups != 0)
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "convolution groups must divide the channel counts");
    // Grouped (depthwise: groups == in == out): the filter holds in / groups input channels
    // and the descriptor the group count.
    KILN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_desc_, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC,
                                                w.out_channels, w.in_channels / w.groups, w.kernel,
                                                w.kernel));
    // Stride 2 for the UNet's downsamplers, padding as the graph gives it (kernel / 2 unless
    // set: 0 for unpadded and 2x2 stride-2 convolutions, K - 1 for sub-pixel ones); the output
    // view has the graph's output size ((size + 2 pad - kernel) / stride + 1), which is what
    // cuDNN computes.
    KILN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv_desc_, pad, pad, w.stride, w.stride, 1, 1,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    KILN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv_desc_, w.groups));
    // Packed copies first: a view whose packed copy does not fit cuDNN's 32-bit descriptors
    // cannot run at all; one whose strided form does not fit runs on packed copies only.
    const CudnnViewDims src_packed = cudnn_view_dims(setup.src.desc, true);
    const CudnnViewDims dst_packed = cudnn_view_dims(setup.dst.desc, true);
    if (!cudnn_view_fits(src_packed))
        throw core::Error(core::ErrorCode::TOO_LARGE,
                          cudnn_view_limit_message("convolution input", src_packed));
    if (!cudnn_view_fits(dst_packed))
        throw core::Error(core::ErrorCode::TOO_LARGE,
                          cudnn_view_limit_message("convolution output", dst_packed));
    const bool strided_fits = cudnn_view_fits(cudnn_view_dims(setup.src.desc, false)) &&
                              cudnn_view_fits(cudnn_view_dims(setup.dst.desc, false));
    set_descriptors(true);
    if (strided_fits)
        set_descriptors(false);
    int n = 0, c = 0, out_h = 0, out_w = 0;
    KILN_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv_desc_, x_desc_[1], w_desc_, &n, &c,
                                                           &out_h, &out_w));
    if (out_h != setup.dst.desc.h || out_w != setup.dst.desc.w || c != setup.dst.desc.c) {
        throw core::Error(core::ErrorCode::INTERNAL,
                          "convolution output " + std::to_string(out_h) + "x" +
                              std::to_string(out_w) + "x" + std::to_string(c) +
                              " does not match the graph's " + std::to_string(setup.dst.desc.h) +
                              "x" + std::to_string(setup.dst.desc.w) + "x" +
                              std::to_string(setup.dst.desc.c));
    }
    KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv_desc_, CUDNN_TENSOR_OP_MATH));
    KILN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(bias_desc_, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1,
                                                w.out_channels, 1, 1));
    KILN_CUDNN_CHECK(cudnnSetActivationDescriptor(act_desc_, CUDNN_ACTIVATION_RELU,
                                                  CUDNN_NOT_PROPAGATE_NAN, 0.0));

    const ConvParamOffsets& off = setup.offsets;
    const bool want_fused =
        setup.fuse_bias_relu && e.act == Activation::RELU && e.adds.empty() && off.has_bias;
    whole_views_ = setup.src.desc.packed() && setup.dst.desc.packed();
    const ConvViewPlan plan = conv_view_plan(setup.views, setup.src.desc, setup.dst.desc);
    Variant strided, packed;
    bool have_strided =
        plan.strided && strided_fits && choose_algorithm(false, want_fused, &strided);
    bool have_packed = plan.packed && choose_algorithm(true, false, &packed);
    // The planned path found no algorithm: the other one.
    if (!have_strided && !have_packed) {
        if (!plan.packed)
            have_packed = choose_algorithm(true, false, &packed);
        else if (!plan.strided && strided_fits)
            have_strided = choose_algorithm(false, want_fused, &strided);
    }
    if (!have_strided && !have_packed) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "cuDNN has no forward algorithm for convolution " +
                              std::to_string(w.in_channels) + "->" +
                              std::to_string(w.out_channels) + " k" + std::to_string(w.kernel) +
                              (w.groups != 1 ? " groups " + std::to_string(w.groups) : ""));
    }
    ConvViewPath path = have_strided ? ConvViewPath::STRIDED : ConvViewPath::PACKED;
    if (have_strided && have_packed && plan.time_both) {
        strided_ms_ = time_variant(strided);
        packed_ms_ = time_variant(packed);
        path = pick_conv_view_path(strided_ms_, packed_ms_);
    }
    chosen_ = path == ConvViewPath::STRIDED ? strided : packed;
    if (chosen_.packed)
        scratch_bytes_ = packed_scratch_bytes();
    epilogue_args_ = epilogue_for(chosen_, &needs_epilogue_);
}

void CudnnConv::set_descriptors(bool packed) {
    const int k = packed ? 1 : 0;
    set_view_desc(x_desc_[k], cudnn_view_dims(setup_.src.desc, packed));
    set_view_desc(y_desc_[k], cudnn_view_dims(setup_.dst.desc, packed));
}

size_t CudnnConv::packed_scratch_bytes() const {
    return half_view_bytes(setup_.src.desc) + half_view_bytes(setup_.dst.desc) + 256;
}

kernels::EpilogueArgs CudnnConv::epilogue_for(const Variant& v, bool* needs_epilogue) const {
    const Epilogue& e = *setup_.epilogue;
    const ConvParamOffsets& off = setup_.offsets;
    kernels::EpilogueArgs args;
    args.bias = off.has_bias && !v.fused
                    ? reinterpret_cast<const float*>(setup_.params + off.bias_float)
                    : nullptr;
    args.act = v.fused ? kernels::Act::NONE : static_cast<kernels::Act>(e.act);
    args.alpha = e.alpha;
    args.prelu_slope =
        off.has_prelu ? reinterpret_cast<const float*>(setup_.params + off.prelu) : nullptr;
    args.num_adds = static_cast<int>(e.adds.size());
    for (size_t k = 0; k < e.adds.size(); ++k) {
        args.residual[k] = setup_.residuals[k];
        args.scale[k] = e.adds[k].scale;
    }
    *needs_epilogue = v.packed || args.bias || args.act != kernels::Act::NONE || !e.adds.empty();
    return args;
}

float CudnnConv::time_variant(const Variant& v) {
    constexpr int kReps = 5;
    try {
        bool needs = false;
        const kernels::EpilogueArgs args = epilogue_for(v, &needs);
        PoolBlock workspace(*setup_.pool, v.workspace);
        PoolBlock scratch(*setup_.pool, v.packed ? packed_scratch_bytes() : 0);
        cudaStream_t stream = nullptr;
        KILN_CUDNN_CHECK(cudnnGetStream(setup_.handle, &stream));
        auto* scratch_ptr = static_cast<uint8_t*>(scratch.get());
        EventPair events;
        run(v, args, needs, workspace.get(), scratch_ptr, stream);  // warm-up
        KILN_CUDA_CHECK(cudaEventRecord(events.start, stream));
        for (int k = 0; k < kReps; ++k)
            run(v, args, needs, workspace.get(), scratch_ptr, stream);
        KILN_CUDA_CHECK(cudaEventRecord(events.stop, stream));
        KILN_CUDA_CHECK(cudaEventSynchronize(events.stop));
        float ms = 0.0f;
        KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, events.start, events.stop));
        return ms / kReps;
    } catch (const core::Error&) {
        cudaGetLastError();  // this path does not run: the other one is kept
        return -1.0f;
    }
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
    for (int k = 0; k < 2; ++k) {
        if (y_desc_[k])
            cudnnDestroyTensorDescriptor(y_desc_[k]);
        if (x_desc_[k])
            cudnnDestroyTensorDescriptor(x_desc_[k]);
        x_desc_[k] = y_desc_[k] = nullptr;
    }
    act_desc_ = nullptr;
    conv_desc_ = nullptr;
    w_desc_ = nullptr;
    bias_desc_ = nullptr;
}

bool CudnnConv::candidates(bool packed,
                           const void* x,
                           void* y,
                           cudnnConvolutionFwdAlgoPerf_t* perf,
                           int* returned,
                           std::string* note) {
    const int k = packed ? 1 : 0;
    if (setup_.timed_search) {
        // Every algorithm once on the plan's own buffers (the trial launches below write them
        // too), with the largest workspace the plan allows; results sorted by time.
        try {
            PoolBlock workspace(*setup_.pool, setup_.workspace_limit);
            const cudnnStatus_t st = cudnnFindConvolutionForwardAlgorithmEx(
                setup_.handle, x_desc_[k], x, w_desc_, setup_.params + setup_.offsets.weight,
                conv_desc_, y_desc_[k], y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, returned, perf,
                workspace.get(), setup_.workspace_limit);
            if (st == CUDNN_STATUS_SUCCESS) {
                KILN_CUDA_CHECK(cudaGetLastError());
                return true;
            }
            *note = std::string("timed search failed (") + cudnnGetErrorString(st) + "), heuristic";
        } catch (const core::Error& e) {
            if (e.code() != core::ErrorCode::OUT_OF_MEMORY)
                throw;
            *note = "no memory for the timed search's workspace, heuristic";
        }
    }
    return cudnnGetConvolutionForwardAlgorithm_v7(setup_.handle, x_desc_[k], w_desc_, conv_desc_,
                                                  y_desc_[k], CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                  returned, perf) == CUDNN_STATUS_SUCCESS;
}

bool CudnnConv::choose_algorithm(bool packed, bool want_fused, Variant* out) {
    const int d = packed ? 1 : 0;
    // Trial launches read and write the plan's own buffers (or packed temporaries): every
    // buffer is written by its producer before it is read at run time.
    PoolBlock packed_tmp;
    const void* x = setup_.src.data + setup_.src.desc.c_offset;
    void* y = setup_.dst.data + setup_.dst.desc.c_offset;
    if (packed) {
        const size_t in_bytes = align256(half_view_bytes(setup_.src.desc));
        packed_tmp = PoolBlock(*setup_.pool, in_bytes + half_view_bytes(setup_.dst.desc));
        x = packed_tmp.get();
        y = static_cast<uint8_t*>(packed_tmp.get()) + in_bytes;
    }
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    std::string note;
    if (!candidates(packed, x, y, perf, &returned, &note))
        return false;
    const bool timed = setup_.timed_search && note.empty();
    // Candidate order (heuristic or fastest first); the first one within the workspace limit
    // that launches. Tensor-op math may be downgraded for an algorithm: either is accepted
    // (fp32 accumulation).
    for (int k = 0; k < returned; ++k) {
        if (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > setup_.workspace_limit)
            continue;
        size_t bytes = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(setup_.handle, x_desc_[d], w_desc_, conv_desc_,
                                                    y_desc_[d], perf[k].algo,
                                                    &bytes) != CUDNN_STATUS_SUCCESS) {
            continue;
        }
        bytes = std::max(bytes, perf[k].memory);
        if (bytes > setup_.workspace_limit)
            continue;
        PoolBlock workspace(*setup_.pool, bytes);
        for (const bool fused : {true, false}) {
            if (fused && !want_fused)
                continue;
            Variant v;
            v.packed = packed;
            v.algo = perf[k].algo;
            v.fused = fused;
            v.workspace = bytes;
            if (launch(v, x, y, workspace.get(), bytes) == CUDNN_STATUS_SUCCESS) {
                KILN_CUDA_CHECK(cudaGetLastError());
                v.search_ms = timed ? perf[k].time : -1.0f;
                v.note = note;
                *out = v;
                return true;
            }
        }
    }
    return false;
}

cudnnStatus_t CudnnConv::launch(const Variant& v,
                                const void* x,
                                void* y,
                                void* workspace,
                                size_t workspace_bytes) const {
    const float one = 1.0f, zero = 0.0f;
    const void* weight = setup_.params + setup_.offsets.weight;
    const int d = v.packed ? 1 : 0;
    if (v.fused) {
        return cudnnConvolutionBiasActivationForward(
            setup_.handle, &one, x_desc_[d], x, w_desc_, weight, conv_desc_, v.algo, workspace,
            workspace_bytes, &zero, y_desc_[d], y, bias_desc_,
            setup_.params + setup_.offsets.bias_half, act_desc_, y_desc_[d], y);
    }
    return cudnnConvolutionForward(setup_.handle, &one, x_desc_[d], x, w_desc_, weight, conv_desc_,
                                   v.algo, workspace, workspace_bytes, &zero, y_desc_[d], y);
}

void CudnnConv::run(const Variant& v,
                    const kernels::EpilogueArgs& args,
                    bool needs_epilogue,
                    void* workspace,
                    uint8_t* scratch,
                    cudaStream_t stream) const {
    kernels::DeviceView src = setup_.src, out = setup_.dst;
    if (v.packed) {
        const size_t in_bytes = align256(half_view_bytes(src.desc));
        src = {reinterpret_cast<uint16_t*>(scratch), packed_desc(setup_.src.desc)};
        out = {reinterpret_cast<uint16_t*>(scratch + in_bytes), packed_desc(setup_.dst.desc)};
        kernels::copy(setup_.src, src, stream);
    }
    const cudnnStatus_t status = launch(v, src.data + src.desc.c_offset,
                                        out.data + out.desc.c_offset, workspace, v.workspace);
    if (status != CUDNN_STATUS_SUCCESS)
        throw_cudnn_error(status, "convolution forward", __func__, __FILE__, __LINE__);
    if (needs_epilogue)
        kernels::epilogue(out, setup_.dst, args, stream);
}

void CudnnConv::execute(cudaStream_t stream) const {
    run(chosen_, epilogue_args_, needs_epilogue_, workspace_, scratch_, stream);
}

std::string CudnnConv::describe() const {
    static const char* const names[] = {
        "implicit_gemm", "implicit_precomp_gemm", "gemm", "direct", "fft", "fft_tiling",
        "winograd",      "winograd_nonfused"};
    const int a = static_cast<int>(chosen_.algo);
    std::string s =
        std::string("cudnn ") + (a >= 0 && a < 8 ? names[a] : "algo " + std::to_string(a)).c_str();
    const auto ms = [](float value) {
        char text[32];
        std::snprintf(text, sizeof text, "%.4f", static_cast<double>(value));
        return std::string(text);
    };
    if (chosen_.search_ms >= 0.0f)
        s += " timed " + ms(chosen_.search_ms) + " ms";  // cuDNN's time, unfused forward
    if (!chosen_.note.empty())
        s += " (" + chosen_.note + ")";
    if (stride_ != 1)
        s += " stride " + std::to_string(stride_);
    if (!same_pad_)
        s += " pad " + std::to_string(pad_);
    if (groups_ != 1)
        s += " groups " + std::to_string(groups_);
    s += " ws " + std::to_string(chosen_.workspace);
    // Which path over the views ran, and the whole-op times when both were measured.
    s += whole_views_ ? " whole-views" : chosen_.packed ? " packed-copies" : " strided-views";
    if (strided_ms_ >= 0.0f || packed_ms_ >= 0.0f) {
        s += " [strided " + (strided_ms_ >= 0.0f ? ms(strided_ms_) + " ms" : "failed") +
             " vs packed " + (packed_ms_ >= 0.0f ? ms(packed_ms_) + " ms" : "failed") + "]";
    }
    s += chosen_.fused ? " +bias+relu fused" : needs_epilogue_ ? " +epilogue kernel" : "";
    return s;
}

}  // namespace kiln::engine::cuda
