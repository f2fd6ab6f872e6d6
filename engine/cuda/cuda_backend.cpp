#include "engine/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <sstream>

#include "core/error.h"
#include "engine/cuda/arch_check.h"
#include "engine/cuda/conv_routing.h"
#include "engine/cuda/cudnn_check.h"
#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/device_pool.h"
#include "engine/cuda/nvtx.h"
#include "engine/graph/memory_plan.h"
#include "engine/pool_block.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#include "kernels/linear.h"

#ifndef KILN_CUDA_ARCHS
#define KILN_CUDA_ARCHS ""  // set by engine/CMakeLists.txt from CMAKE_CUDA_ARCHITECTURES
#endif

namespace kiln::engine::cuda {

namespace {

constexpr size_t kAlign = 256;

// Graph activations are cast to the kernels' (same numbering).
static_assert(static_cast<int>(Activation::RELU) == static_cast<int>(kernels::Act::RELU));
static_assert(static_cast<int>(Activation::LEAKY_RELU) ==
              static_cast<int>(kernels::Act::LEAKY_RELU));
static_assert(static_cast<int>(Activation::PRELU) == static_cast<int>(kernels::Act::PRELU));
static_assert(static_cast<int>(Activation::SILU) == static_cast<int>(kernels::Act::SILU));
static_assert(static_cast<int>(Activation::GELU) == static_cast<int>(kernels::Act::GELU));
static_assert(static_cast<int>(Activation::SIGMOID) == static_cast<int>(kernels::Act::SIGMOID));

size_t align_up(size_t n) {
    return (n + kAlign - 1) / kAlign * kAlign;
}

class CudaContext final : public ExecutionContext {
  public:
    CudaContext(int device, size_t pool_keep_bytes) : device_(device) {
        KILN_CUDA_CHECK(cudaSetDevice(device));
        KILN_CUDA_CHECK(
            cudaDeviceGetAttribute(&cc_major_, cudaDevAttrComputeCapabilityMajor, device));
        KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        const cudnnStatus_t status = cudnnCreate(&cudnn_);
        if (status != CUDNN_STATUS_SUCCESS) {
            cudaStreamDestroy(stream_);
            throw_cudnn_error(status, "cudnnCreate(&cudnn_)", __func__, __FILE__, __LINE__);
        }
        KILN_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
        pool_ = std::make_unique<DevicePool>(device, stream_, pool_keep_bytes);
        // Optional: without it, linear layers run as cuDNN convolutions.
        if (cublasLtCreate(&cublaslt_) != CUBLAS_STATUS_SUCCESS)
            cublaslt_ = nullptr;
    }
    ~CudaContext() override {
        if (cublaslt_)
            cublasLtDestroy(cublaslt_);
        pool_.reset();
        cudnnDestroy(cudnn_);
        cudaStreamDestroy(stream_);
    }
    CudaContext(const CudaContext&) = delete;
    CudaContext& operator=(const CudaContext&) = delete;

    BackendKind kind() const override { return BackendKind::CUDA; }
    int threads() const override { return 1; }
    MemoryPool& pool() override { return *pool_; }
    cudaStream_t stream() const { return stream_; }
    cudnnHandle_t cudnn() const { return cudnn_; }
    cublasLtHandle_t cublaslt() const { return cublaslt_; }
    int device() const { return device_; }
    int cc_major() const { return cc_major_; }

  private:
    int device_;
    int cc_major_ = 0;
    cudaStream_t stream_ = nullptr;
    cudnnHandle_t cudnn_ = nullptr;
    cublasLtHandle_t cublaslt_ = nullptr;
    std::unique_ptr<DevicePool> pool_;
};

// fp16 NHWC bytes of every buffer; the output op's buffer is never written (the output
// goes to the fp32 staging buffer) and takes no space.
std::vector<size_t> buffer_sizes(const Graph& graph) {
    std::vector<size_t> sizes;
    for (const Buffer& b : graph.buffers()) {
        sizes.push_back(static_cast<size_t>(b.h) * static_cast<size_t>(b.w) *
                        static_cast<size_t>(b.c) * sizeof(uint16_t));
    }
    if (graph.output_value() != kNoValue)
        sizes[static_cast<size_t>(graph.value(graph.output_value()).buffer)] = 0;
    return sizes;
}

size_t f32_bytes(const Value& v) {
    return static_cast<size_t>(v.h) * static_cast<size_t>(v.w) * static_cast<size_t>(v.c) *
           sizeof(float);
}

struct Step {
    std::string name;
    std::function<void(cudaStream_t)> run;
};

// Scratch bytes of an op beyond its output buffer (GroupNorm's partial statistics, global
// average pooling's per-split sums).
size_t op_scratch_bytes(const Graph& graph, const Op& op) {
    if (op.kind != OpKind::GROUP_NORM && op.kind != OpKind::GLOBAL_AVG_POOL)
        return 0;
    const Value& x = graph.value(op.inputs[0]);
    if (op.kind == OpKind::GLOBAL_AVG_POOL)
        return kernels::global_avg_pool_scratch_bytes({x.h, x.w, x.c, x.c, 0});
    return kernels::group_norm_scratch_bytes({x.h, x.w, x.c, x.c, 0}, op.norm.groups);
}

// fp32 parameters of a norm op (gamma and beta) in the parameter block.
size_t norm_param_bytes(const Op& op) {
    if (op.kind != OpKind::GROUP_NORM && op.kind != OpKind::LAYER_NORM)
        return 0;
    return 2 * align_up(op.norm.gamma->size() * sizeof(float)) + kAlign;
}

// fp32 parameters of a grouped attention in the parameter block: a window attention's
// position bias ([heads, n, n], if any), a channel attention's temperatures ([heads]).
size_t window_param_bytes(const Op& op) {
    if (op.kind == OpKind::WINDOW_ATTENTION && op.window.bias)
        return align_up(op.window.bias->size() * sizeof(float)) + kAlign;
    if (op.kind == OpKind::CHANNEL_ATTENTION)
        return align_up(op.window.temperature->size() * sizeof(float)) + kAlign;
    return 0;
}

// The kernels' arguments of a WINDOW_ATTENTION / CHANNEL_ATTENTION op; `param` is its fp32
// bias or temperatures in the parameter block (null: no bias).
kernels::WindowAttentionArgs window_args(const Op& op, const float* param) {
    kernels::WindowAttentionArgs args;
    args.window = op.window.window;
    args.grid = op.window.groups == PixelGroups::GRID;
    args.heads = op.window.heads;
    args.scale = op.window.scale;
    args.bias = param;
    return args;
}

kernels::ChannelAttentionArgs channel_args(const Op& op, const float* param) {
    kernels::ChannelAttentionArgs args;
    args.window = op.window.window;
    args.grid = op.window.groups == PixelGroups::GRID;
    args.heads = op.window.heads;
    args.temperature = param;
    return args;
}

// Refuses, when the plan is built, a grouped attention whose group does not fit the kernel's
// shared memory (window: n tokens of the head's q, k, v; channel: the head's d x d products);
// returns the op's line for describe().
std::string check_group_attention(const Graph& graph, const Op& op) {
    const Value& out = graph.value(op.output);
    const int d = out.c / op.window.heads;
    const int n = group_pixels(op.kind, op.window, out.h, out.w);
    const bool window = op.kind == OpKind::WINDOW_ATTENTION;
    const bool fits =
        window ? kernels::window_attention_fits(n, d) : kernels::channel_attention_fits(d);
    if (!fits) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          op.name + ": " + std::to_string(n) + " pixels per group with heads of " +
                              std::to_string(d) +
                              " channels do not fit the kernel's 48 KiB of shared memory");
    }
    const size_t smem = window ? kernels::window_attention_smem_bytes(n, d)
                               : kernels::channel_attention_smem_bytes(d);
    return op.name + ": " + (window ? "window" : "channel") + " attention, " +
           (op.window.groups == PixelGroups::GRID ? "grid" : "blocks") + " groups of " +
           std::to_string(n) + " pixels, " + std::to_string(op.window.heads) + " heads of " +
           std::to_string(d) + ", " + std::to_string(smem) + " B shared memory per block";
}

// A value's view of its buffer (channels [c_offset, c_offset + c) of c_total).
kernels::ViewDesc view_desc(const Graph& graph, ValueId id) {
    const Value& v = graph.value(id);
    return {v.h, v.w, v.c, graph.buffers()[static_cast<size_t>(v.buffer)].c, v.c_offset};
}

// Where a convolution runs (engine/cuda/conv_routing.h).
ConvRoute route_of(const Graph& graph,
                   const Op& op,
                   const CudaBackendOptions& options,
                   bool cublaslt_ready) {
    ConvRouteQuery q;
    q.kernel = op.conv.kernel;
    q.stride = op.conv.stride;
    q.pad = op.conv.padding();
    q.groups = op.conv.groups;
    q.src = view_desc(graph, op.inputs[0]);
    q.dst = view_desc(graph, op.output);
    q.cublaslt_enabled = options.cublaslt_linear;
    q.cublaslt_ready = cublaslt_ready;
    return conv_route(q);
}

// cuBLASLt's workspace for a plan of `graph`: 0 when no convolution goes to cuBLASLt.
size_t linear_workspace_bytes(const Graph& graph,
                              const CudaBackendOptions& options,
                              int cc_major,
                              bool cublaslt_ready) {
    for (const Op& op : graph.ops()) {
        if (op.kind == OpKind::CONV2D &&
            route_of(graph, op, options, cublaslt_ready) == ConvRoute::CUBLASLT) {
            return cublaslt_workspace_bytes(cc_major, options.cublaslt_workspace,
                                            options.workspace_limit);
        }
    }
    return 0;
}

kernels::DeviceView channel_slice(kernels::DeviceView v, int c0, int c) {
    v.desc.c_offset += c0;
    v.desc.c = c;
    return v;
}

class CudaPlan final : public Plan {
  public:
    CudaPlan(const Graph& graph, CudaContext& context, const CudaBackendOptions& options)
        : context_(context) {
        KILN_CUDA_CHECK(cudaSetDevice(context.device()));
        if (graph.ops().empty() || graph.ops().back().kind != OpKind::OUTPUT)
            throw core::Error(core::ErrorCode::INTERNAL, "graph has no output");
        if (graph.input_values().empty())
            throw core::Error(core::ErrorCode::INTERNAL, "graph has no input");
        const cudaStream_t stream = context.stream();
        const MemoryPlan memory = plan_memory(buffer_lifetimes(graph), buffer_sizes(graph), kAlign);
        arena_ = PoolBlock(context.pool(), memory.arena_bytes);
        auto* arena = static_cast<uint8_t*>(arena_.get());
        const auto& buffers = graph.buffers();
        auto view = [&](ValueId id) {
            const Value& v = graph.value(id);
            const auto b = static_cast<size_t>(v.buffer);
            kernels::DeviceView dv;
            dv.data = reinterpret_cast<uint16_t*>(arena + memory.offsets[b]);
            dv.desc = {v.h, v.w, v.c, buffers[b].c, v.c_offset};
            return dv;
        };

        // Parameters of every convolution and norm in one block, uploaded once.
        std::vector<uint8_t> blob;
        std::vector<ConvParamOffsets> offsets;
        std::vector<std::pair<size_t, size_t>> norm_offsets;  // gamma, beta
        constexpr size_t kNoParam = ~size_t{0};
        std::vector<size_t> window_offsets;  // bias (or kNoParam) / temperatures, in op order
        for (const Op& op : graph.ops()) {
            if (op.kind == OpKind::CONV2D)
                offsets.push_back(pack_conv_params(op.conv, op.epilogue, blob));
            if (op.kind == OpKind::GROUP_NORM || op.kind == OpKind::LAYER_NORM) {
                const size_t gamma = pack_floats(*op.norm.gamma, blob);
                norm_offsets.emplace_back(gamma, pack_floats(*op.norm.beta, blob));
            }
            if (op.kind == OpKind::WINDOW_ATTENTION) {
                window_offsets.push_back(op.window.bias ? pack_floats(*op.window.bias, blob)
                                                        : kNoParam);
            }
            if (op.kind == OpKind::CHANNEL_ATTENTION)
                window_offsets.push_back(pack_floats(*op.window.temperature, blob));
        }
        params_ = PoolBlock(context.pool(), blob.size());
        weight_bytes_ = blob.size();
        if (!blob.empty()) {
            // From pageable memory: cudaMemcpyAsync stages it before returning.
            KILN_CUDA_CHECK(cudaMemcpyAsync(params_.get(), blob.data(), blob.size(),
                                            cudaMemcpyHostToDevice, stream));
        }
        const auto* params = static_cast<const uint8_t*>(params_.get());

        // fp32 staging: one area per graph input (in declaration order), then the output.
        // Their addresses never change, so a captured CUDA graph replays for every sample.
        const Value& out_v = graph.value(graph.output_value());
        size_t staging_bytes = 0;
        for (const ValueId id : graph.input_values()) {
            inputs_.push_back({f32_bytes(graph.value(id)), nullptr, {}});
            staging_bytes += align_up(inputs_.back().bytes);
        }
        output_bytes_ = f32_bytes(out_v);
        staging_ = PoolBlock(context.pool(), staging_bytes + align_up(output_bytes_));
        auto* staging = static_cast<uint8_t*>(staging_.get());
        for (InputStaging& in : inputs_) {
            in.device = reinterpret_cast<float*>(staging);
            in.pinned = PinnedBuffer(in.bytes);
            staging += align_up(in.bytes);
        }
        auto* dev_out = reinterpret_cast<float*>(staging);
        dev_out_ = dev_out;
        pinned_out_ = PinnedBuffer(output_bytes_);

        size_t workspace = 0, scratch = 0, op_scratch = 0;
        for (const Op& op : graph.ops())
            op_scratch = std::max(op_scratch, op_scratch_bytes(graph, op));
        op_scratch_ = PoolBlock(context.pool(), op_scratch);
        void* const op_scratch_ptr = op_scratch_.get();
        // One cuBLASLt workspace for the plan's linears (they run in order on the stream).
        linear_workspace_ =
            PoolBlock(context.pool(), linear_workspace_bytes(graph, options, context.cc_major(),
                                                             context.cublaslt() != nullptr));
        size_t conv_index = 0, norm_index = 0, window_index = 0;
        for (const Op& op : graph.ops()) {
            switch (op.kind) {
                case OpKind::INPUT: {
                    const auto& ids = graph.input_values();
                    const auto index = static_cast<size_t>(
                        std::find(ids.begin(), ids.end(), op.output) - ids.begin());
                    if (index >= inputs_.size())
                        throw core::Error(core::ErrorCode::INTERNAL,
                                          "input op of no declared input");
                    const float* dev_in = inputs_[index].device;
                    const kernels::DeviceView dst = view(op.output);
                    steps_.push_back({op.name, [dev_in, dst](cudaStream_t s) {
                                          kernels::f32_to_half(dev_in, dst, s);
                                      }});
                    break;
                }
                case OpKind::OUTPUT: {
                    const kernels::DeviceView src = view(op.inputs[0]);
                    steps_.push_back({op.name, [dev_out, src](cudaStream_t s) {
                                          kernels::half_to_f32(src, dev_out, s);
                                      }});
                    break;
                }
                case OpKind::CONV2D: {
                    if (route_of(graph, op, options, context.cublaslt() != nullptr) ==
                        ConvRoute::CUBLASLT) {
                        std::string why;
                        if (add_linear(op, view, params, offsets[conv_index], &why)) {
                            ++conv_index;
                            break;
                        }
                        descriptions_.push_back(op.name + ": cuBLASLt refused (" + why +
                                                "), cuDNN instead");
                    }
                    ConvSetup setup;
                    setup.handle = context.cudnn();
                    setup.pool = &context.pool();
                    setup.weights = &op.conv;
                    setup.epilogue = &op.epilogue;
                    setup.src = view(op.inputs[0]);
                    setup.dst = view(op.output);
                    for (const ResidualAdd& add : op.epilogue.adds)
                        setup.residuals.push_back(view(add.residual));
                    setup.params = params;
                    setup.offsets = offsets[conv_index++];
                    setup.fuse_bias_relu = options.fuse_bias_relu;
                    setup.workspace_limit = options.workspace_limit;
                    setup.timed_search = options.conv_algo_search == ConvAlgoSearch::TIMED;
                    setup.views = options.conv_views;
                    convs_.push_back(std::make_unique<CudnnConv>(setup));
                    const CudnnConv* conv = convs_.back().get();
                    workspace = std::max(workspace, conv->workspace_bytes());
                    scratch = std::max(scratch, conv->scratch_bytes());
                    descriptions_.push_back(op.name + ": " + conv->describe());
                    steps_.push_back({op.name, [conv](cudaStream_t s) { conv->execute(s); }});
                    break;
                }
                case OpKind::UPSAMPLE_NEAREST:
                case OpKind::UPSAMPLE_BILINEAR:
                case OpKind::PIXEL_SHUFFLE:
                case OpKind::PIXEL_UNSHUFFLE:
                case OpKind::RESIZE_BICUBIC:
                case OpKind::RESIZE_BILINEAR: {
                    const kernels::DeviceView src = view(op.inputs[0]);
                    const kernels::DeviceView dst = view(op.output);
                    const int f = op.factor;
                    const OpKind kind = op.kind;
                    steps_.push_back({op.name, [src, dst, f, kind](cudaStream_t s) {
                                          switch (kind) {
                                              case OpKind::UPSAMPLE_NEAREST:
                                                  kernels::upsample_nearest(src, dst, f, s);
                                                  break;
                                              case OpKind::UPSAMPLE_BILINEAR:
                                                  kernels::upsample_bilinear(src, dst, f, s);
                                                  break;
                                              case OpKind::PIXEL_SHUFFLE:
                                                  kernels::pixel_shuffle(src, dst, f, s);
                                                  break;
                                              case OpKind::RESIZE_BICUBIC:
                                                  kernels::resize_bicubic(src, dst, s);
                                                  break;
                                              case OpKind::RESIZE_BILINEAR:
                                                  kernels::resize_bilinear(src, dst, s);
                                                  break;
                                              default:
                                                  kernels::pixel_unshuffle(src, dst, f, s);
                                                  break;
                                          }
                                      }});
                    break;
                }
                case OpKind::ADD: {
                    const kernels::DeviceView a = view(op.inputs[0]);
                    const kernels::DeviceView b = view(op.inputs[1]);
                    const kernels::DeviceView dst = view(op.output);
                    const float scale = op.scale;
                    steps_.push_back({op.name, [a, b, dst, scale](cudaStream_t s) {
                                          kernels::add(a, b, dst, scale, s);
                                      }});
                    break;
                }
                case OpKind::GROUP_NORM:
                case OpKind::LAYER_NORM: {
                    const kernels::DeviceView x = view(op.inputs[0]);
                    const kernels::DeviceView y = view(op.output);
                    kernels::GroupNormArgs args;
                    args.groups = op.norm.groups;
                    args.eps = op.norm.eps;
                    args.gamma =
                        reinterpret_cast<const float*>(params + norm_offsets[norm_index].first);
                    args.beta =
                        reinterpret_cast<const float*>(params + norm_offsets[norm_index].second);
                    ++norm_index;
                    if (op.norm.act != Activation::NONE && op.norm.act != Activation::SILU)
                        throw core::Error(core::ErrorCode::UNSUPPORTED,
                                          op.name + ": norm activation");
                    args.silu = op.norm.act == Activation::SILU;
                    if (op.kind == OpKind::GROUP_NORM) {
                        steps_.push_back({op.name, [x, y, args, op_scratch_ptr](cudaStream_t s) {
                                              kernels::group_norm(x, y, args, op_scratch_ptr, s);
                                          }});
                    } else {
                        steps_.push_back({op.name, [x, y, args](cudaStream_t s) {
                                              kernels::layer_norm(x, y, args, s);
                                          }});
                    }
                    break;
                }
                case OpKind::ACTIVATION: {
                    const kernels::DeviceView x = view(op.inputs[0]);
                    const kernels::DeviceView y = view(op.output);
                    kernels::EpilogueArgs args;
                    args.act = static_cast<kernels::Act>(op.act);
                    if (op.act == Activation::PRELU)
                        throw core::Error(core::ErrorCode::UNSUPPORTED,
                                          "PReLU as a graph activation");
                    steps_.push_back({op.name, [x, y, args](cudaStream_t s) {
                                          kernels::epilogue(x, y, args, s);
                                      }});
                    break;
                }
                case OpKind::GEGLU: {
                    const kernels::DeviceView x = view(op.inputs[0]);
                    const kernels::DeviceView y = view(op.output);
                    steps_.push_back(
                        {op.name, [x, y](cudaStream_t s) { kernels::geglu(x, y, s); }});
                    break;
                }
                case OpKind::ATTENTION: {
                    const kernels::DeviceView q = view(op.inputs[0]);
                    const kernels::DeviceView k = view(op.inputs[1]);
                    const kernels::DeviceView v = view(op.inputs[2]);
                    const kernels::DeviceView o = view(op.output);
                    const kernels::AttentionArgs args{op.attention.heads, op.attention.scale};
                    if (q.desc.c / args.heads > kernels::kMaxAttentionHeadDim) {
                        throw core::Error(core::ErrorCode::UNSUPPORTED,
                                          op.name + ": attention head dimension above " +
                                              std::to_string(kernels::kMaxAttentionHeadDim));
                    }
                    steps_.push_back({op.name, [q, k, v, o, args](cudaStream_t s) {
                                          kernels::attention(q, k, v, o, args, s);
                                      }});
                    break;
                }
                case OpKind::GLOBAL_AVG_POOL: {
                    const kernels::DeviceView x = view(op.inputs[0]);
                    const kernels::DeviceView y = view(op.output);
                    steps_.push_back({op.name, [x, y, op_scratch_ptr](cudaStream_t s) {
                                          kernels::global_avg_pool(x, y, op_scratch_ptr, s);
                                      }});
                    break;
                }
                case OpKind::MUL: {
                    const kernels::DeviceView a = view(op.inputs[0]);
                    const kernels::DeviceView b = view(op.inputs[1]);
                    const kernels::DeviceView dst = view(op.output);
                    steps_.push_back(
                        {op.name, [a, b, dst](cudaStream_t s) { kernels::mul(a, b, dst, s); }});
                    break;
                }
                case OpKind::CROP: {
                    const kernels::DeviceView x = view(op.inputs[0]);
                    const kernels::DeviceView y = view(op.output);
                    const int top = op.crop_top, left = op.crop_left;
                    steps_.push_back({op.name, [x, y, top, left](cudaStream_t s) {
                                          kernels::crop(x, y, top, left, s);
                                      }});
                    break;
                }
                case OpKind::MAX_POOL: {
                    const kernels::DeviceView x = view(op.inputs[0]);
                    const kernels::DeviceView y = view(op.output);
                    const int kernel = op.pool_kernel, stride = op.pool_stride;
                    steps_.push_back({op.name, [x, y, kernel, stride](cudaStream_t s) {
                                          kernels::max_pool(x, y, kernel, stride, s);
                                      }});
                    break;
                }
                case OpKind::WINDOW_ATTENTION: {
                    descriptions_.push_back(check_group_attention(graph, op));
                    const size_t off = window_offsets[window_index++];
                    const kernels::WindowAttentionArgs args = window_args(
                        op,
                        off == kNoParam ? nullptr : reinterpret_cast<const float*>(params + off));
                    const kernels::DeviceView qkv = view(op.inputs[0]);
                    const kernels::DeviceView out = view(op.output);
                    steps_.push_back({op.name, [qkv, out, args](cudaStream_t s) {
                                          kernels::window_attention(qkv, out, args, s);
                                      }});
                    break;
                }
                case OpKind::CHANNEL_ATTENTION: {
                    descriptions_.push_back(check_group_attention(graph, op));
                    const size_t off = window_offsets[window_index++];
                    const kernels::ChannelAttentionArgs args =
                        channel_args(op, reinterpret_cast<const float*>(params + off));
                    const kernels::DeviceView qkv = view(op.inputs[0]);
                    const kernels::DeviceView out = view(op.output);
                    steps_.push_back({op.name, [qkv, out, args](cudaStream_t s) {
                                          kernels::channel_attention(qkv, out, args, s);
                                      }});
                    break;
                }
                case OpKind::CONCAT: {
                    // Two copies into the channel slices of the output.
                    const kernels::DeviceView a = view(op.inputs[0]);
                    const kernels::DeviceView b = view(op.inputs[1]);
                    const kernels::DeviceView out = view(op.output);
                    const kernels::DeviceView out_a = channel_slice(out, 0, a.desc.c);
                    const kernels::DeviceView out_b = channel_slice(out, a.desc.c, b.desc.c);
                    steps_.push_back({op.name, [a, b, out_a, out_b](cudaStream_t s) {
                                          kernels::copy(a, out_a, s);
                                          kernels::copy(b, out_b, s);
                                      }});
                    break;
                }
            }
        }
        // One step per op; unnamed ops (input, output, resampling) are named by their kind
        // in NVTX ranges and op times.
        for (size_t i = 0; i < steps_.size(); ++i) {
            if (steps_[i].name.empty())
                steps_[i].name = op_kind_name(graph.ops()[i].kind);
        }
        workspace_ = PoolBlock(context.pool(), workspace);
        scratch_ = PoolBlock(context.pool(), scratch);
        for (auto& conv : convs_)
            conv->bind(workspace_.get(), scratch_.get());
        // Events for per-op timing, created here so that run() allocates nothing.
        events_.resize(steps_.size() + 1);
        for (cudaEvent_t& e : events_)
            KILN_CUDA_CHECK(cudaEventCreate(&e));
        // Parameters uploaded and pool allocations ordered before the plan is handed out.
        KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
        if (options.cuda_graphs)
            capture_graph();
        peak_bytes_ = memory.arena_bytes + weight_bytes_ + staging_.size() + workspace + scratch +
                      op_scratch + linear_workspace_.size();
    }

    ~CudaPlan() override {
        cudaStreamSynchronize(context_.stream());
        if (graph_exec_)
            cudaGraphExecDestroy(graph_exec_);
        for (cudaEvent_t e : events_) {
            if (e)
                cudaEventDestroy(e);
        }
    }
    CudaPlan(const CudaPlan&) = delete;
    CudaPlan& operator=(const CudaPlan&) = delete;

    size_t peak_bytes() const override { return peak_bytes_; }
    size_t weight_bytes() const override { return weight_bytes_; }

    void run_batch(std::span<const float* const> inputs,
                   float* output,
                   int batch,
                   const RunControl& control) override {
        if (inputs.size() != inputs_.size()) {
            throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                              "this plan takes " + std::to_string(inputs_.size()) + " inputs, " +
                                  std::to_string(inputs.size()) + " given");
        }
        if (batch < 0)
            throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "negative batch");
        const size_t out_floats = output_bytes_ / sizeof(float);
        // One sample after another through the same staging areas (and the same CUDA graph).
        for (int n = 0; n < batch; ++n) {
            for (size_t i = 0; i < inputs_.size(); ++i) {
                inputs_[i].host =
                    inputs[i] + inputs_[i].bytes / sizeof(float) * static_cast<size_t>(n);
            }
            run_one(output + out_floats * static_cast<size_t>(n), control);
        }
    }

  private:
    void run_one(float* output, const RunControl& control) {
        KILN_NVTX_RANGE("kiln plan run");
        KILN_CUDA_CHECK(cudaSetDevice(context_.device()));
        const cudaStream_t stream = context_.stream();
        for (InputStaging& in : inputs_) {
            std::memcpy(in.pinned.get(), in.host, in.bytes);
            KILN_CUDA_CHECK(cudaMemcpyAsync(in.device, in.pinned.get(), in.bytes,
                                            cudaMemcpyHostToDevice, stream));
        }
        const int total = static_cast<int>(steps_.size());
        const bool timed = control.op_times != nullptr;
        if (graph_exec_ && !timed) {
            // One launch for every op: cancellation is checked before it, progress after.
            if (control.cancel && control.cancel->load(std::memory_order_relaxed)) {
                KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
                throw core::Error(core::ErrorCode::CANCELLED, "cancelled");
            }
            {
                KILN_NVTX_RANGE("kiln plan graph");
                KILN_CUDA_CHECK(cudaGraphLaunch(graph_exec_, stream));
            }
            finish(output, control);
            if (control.on_op)
                control.on_op(total, total);
            return;
        }
        for (int i = 0; i < total; ++i) {
            if (control.cancel && control.cancel->load(std::memory_order_relaxed)) {
                KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
                throw core::Error(core::ErrorCode::CANCELLED, "cancelled");
            }
            const Step& step = steps_[static_cast<size_t>(i)];
            if (timed)
                KILN_CUDA_CHECK(cudaEventRecord(events_[static_cast<size_t>(i)], stream));
            {
                KILN_NVTX_RANGE(step.name.c_str());
                step.run(stream);
            }
            if (control.on_op)
                control.on_op(i + 1, total);  // enqueued, not necessarily finished
        }
        if (timed)
            KILN_CUDA_CHECK(cudaEventRecord(events_.back(), stream));
        finish(output, control);
        if (timed) {
            for (int i = 0; i < total; ++i) {
                float ms = 0.0f;
                KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[static_cast<size_t>(i)],
                                                     events_[static_cast<size_t>(i) + 1]));
                control.op_times->emplace_back(steps_[static_cast<size_t>(i)].name, ms * 1e-3);
            }
        }
    }

    std::string describe() const override {
        std::ostringstream out;
        for (const std::string& d : descriptions_)
            out << d << '\n';
        out << "execution: " << execution_ << '\n';
        return out.str();
    }

  private:
    // A 1x1 convolution over a token sequence as a cuBLASLt matmul: bias (+ReLU) fused when
    // that is the whole epilogue, else the epilogue kernel after it (in place). False (with
    // the reason) when cuBLASLt has no algorithm for the views.
    template <typename ViewFn>
    bool add_linear(const Op& op,
                    ViewFn& view,
                    const uint8_t* params,
                    const ConvParamOffsets& off,
                    std::string* why) {
        const Epilogue& e = op.epilogue;
        const bool fuse = off.has_bias && e.adds.empty() &&
                          (e.act == Activation::NONE || e.act == Activation::RELU);
        kernels::LinearSetup setup;
        setup.handle = context_.cublaslt();
        setup.stream = context_.stream();
        setup.src = view(op.inputs[0]);
        setup.dst = view(op.output);
        setup.weight = reinterpret_cast<const uint16_t*>(params + off.weight);
        setup.bias = fuse ? reinterpret_cast<const uint16_t*>(params + off.bias_half) : nullptr;
        setup.relu = fuse && e.act == Activation::RELU;
        setup.workspace = linear_workspace_.get();
        setup.workspace_bytes = linear_workspace_.size();
        std::unique_ptr<kernels::CublasLtLinear> linear;
        try {
            linear = std::make_unique<kernels::CublasLtLinear>(setup);
        } catch (const core::Error& err) {
            cudaGetLastError();  // a refused trial launch leaves nothing behind
            *why = err.what();
            return false;
        }
        kernels::EpilogueArgs args;
        bool needs_epilogue = false;
        if (!fuse) {
            args.bias =
                off.has_bias ? reinterpret_cast<const float*>(params + off.bias_float) : nullptr;
            args.act = static_cast<kernels::Act>(e.act);
            args.alpha = e.alpha;
            args.prelu_slope =
                off.has_prelu ? reinterpret_cast<const float*>(params + off.prelu) : nullptr;
            if (e.adds.size() > static_cast<size_t>(kernels::kMaxResidualAdds))
                throw core::Error(core::ErrorCode::UNSUPPORTED,
                                  "more than 4 residual adds in one epilogue");
            args.num_adds = static_cast<int>(e.adds.size());
            for (size_t k = 0; k < e.adds.size(); ++k) {
                args.residual[k] = view(e.adds[k].residual);
                args.scale[k] = e.adds[k].scale;
            }
            needs_epilogue = args.bias || args.act != kernels::Act::NONE || args.num_adds > 0;
        }
        const kernels::CublasLtLinear* lin = linear.get();
        const kernels::DeviceView dst = setup.dst;
        descriptions_.push_back(op.name + ": " + lin->describe() +
                                (needs_epilogue ? " +epilogue kernel" : ""));
        steps_.push_back({op.name, [lin, dst, args, needs_epilogue](cudaStream_t s) {
                              lin->execute(s);
                              if (needs_epilogue)
                                  kernels::epilogue(dst, dst, args, s);
                          }});
        linears_.push_back(std::move(linear));
        return true;
    }

    // Output copy-back and the run's one synchronisation.
    void finish(float* output, const RunControl&) {
        const cudaStream_t stream = context_.stream();
        KILN_CUDA_CHECK(cudaMemcpyAsync(pinned_out_.get(), dev_out_, output_bytes_,
                                        cudaMemcpyDeviceToHost, stream));
        KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
        std::memcpy(output, pinned_out_.get(), output_bytes_);
    }

    // Records every op (input conversion to output conversion; the host copies stay outside)
    // into a CUDA graph. Any failure leaves the plan on eager launches, with the reason in
    // describe().
    void capture_graph() {
        const cudaStream_t stream = context_.stream();
        cudaGraph_t graph = nullptr;
        std::string failure;
        if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
            cudaGetLastError();
            execution_ = "eager (stream capture unavailable)";
            return;
        }
        try {
            for (const Step& step : steps_)
                step.run(stream);
        } catch (const core::Error& e) {
            failure = e.what();
        }
        const cudaError_t end = cudaStreamEndCapture(stream, &graph);
        if (failure.empty() && end != cudaSuccess)
            failure = cudaGetErrorString(end);
        if (failure.empty() && cudaGraphInstantiate(&graph_exec_, graph, 0) != cudaSuccess) {
            failure = "instantiation failed";
            graph_exec_ = nullptr;
        }
        size_t nodes = 0;
        if (graph) {
            cudaGraphGetNodes(graph, nullptr, &nodes);
            cudaGraphDestroy(graph);
        }
        cudaGetLastError();  // a failed capture leaves its error behind
        execution_ = failure.empty() ? "cuda graph, " + std::to_string(nodes) + " nodes"
                                     : "eager (graph capture failed: " + failure + ")";
    }

    // One graph input's fp32 staging: device area, pinned host copy, and the current sample's
    // host pointer (set per sample by run_batch).
    struct InputStaging {
        size_t bytes = 0;
        float* device = nullptr;
        PinnedBuffer pinned;
        const float* host = nullptr;
    };

    CudaContext& context_;
    PoolBlock arena_, params_, staging_, workspace_, scratch_, op_scratch_, linear_workspace_;
    std::vector<InputStaging> inputs_;
    PinnedBuffer pinned_out_;
    float* dev_out_ = nullptr;
    size_t output_bytes_ = 0;
    std::vector<std::unique_ptr<CudnnConv>> convs_;
    std::vector<std::unique_ptr<kernels::CublasLtLinear>> linears_;
    std::vector<Step> steps_;
    std::vector<cudaEvent_t> events_;
    std::vector<std::string> descriptions_;
    size_t weight_bytes_ = 0;
    size_t peak_bytes_ = 0;
    cudaGraphExec_t graph_exec_ = nullptr;
    std::string execution_ = "eager";
};

class CudaBackend final : public Backend {
  public:
    explicit CudaBackend(const CudaBackendOptions& options) : options_(options) {
        int count = 0;
        KILN_CUDA_CHECK(cudaGetDeviceCount(&count));
        if (options.device < 0 || options.device >= count) {
            throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                              "CUDA device " + std::to_string(options.device) +
                                  " does not exist (" + std::to_string(count) + " found)");
        }
        check_architecture();
    }
    BackendKind kind() const override { return BackendKind::CUDA; }
    std::string name() const override { return "cuda"; }

    std::unique_ptr<ExecutionContext> create_context(const ContextOptions& options) override {
        return std::make_unique<CudaContext>(options_.device, options.pool_keep_bytes);
    }

    std::unique_ptr<Plan> compile(const Graph& graph, ExecutionContext& context) override {
        auto* cuda = dynamic_cast<CudaContext*>(&context);
        if (!cuda)
            throw core::Error(core::ErrorCode::INTERNAL, "CUDA backend given a non-CUDA context");
        return std::make_unique<CudaPlan>(graph, *cuda, options_);
    }

    size_t estimate_peak_bytes(const Graph& graph) const override {
        const size_t arena =
            plan_memory(buffer_lifetimes(graph), buffer_sizes(graph), kAlign).arena_bytes;
        // Parameters: fp16 weights and biases, fp32 biases and slopes, each piece aligned;
        // scratch: packed copies of the largest convolution's input and output (used only
        // when cuDNN refuses the strided views); the workspace at its limit.
        size_t params = 0, scratch = 0, op_scratch = 0;
        bool any_conv = false;
        for (const Op& op : graph.ops()) {
            params += norm_param_bytes(op) + window_param_bytes(op);
            op_scratch = std::max(op_scratch, op_scratch_bytes(graph, op));
            if (op.kind != OpKind::CONV2D)
                continue;
            any_conv = true;
            const size_t out = static_cast<size_t>(op.conv.out_channels);
            params += align_up(op.conv.weight->size() * sizeof(uint16_t)) +
                      align_up(out * sizeof(uint16_t)) + 2 * align_up(out * sizeof(float)) + kAlign;
            const Value& in = graph.value(op.inputs[0]);
            const Value& o = graph.value(op.output);
            scratch = std::max(scratch, (static_cast<size_t>(in.h) * in.w * in.c +
                                         static_cast<size_t>(o.h) * o.w * o.c) *
                                                sizeof(uint16_t) +
                                            kAlign);
        }
        size_t staging = align_up(f32_bytes(graph.value(graph.output_value())));
        for (const ValueId id : graph.input_values())
            staging += align_up(f32_bytes(graph.value(id)));
        // cuBLASLt's workspace as if every routed convolution found a handle (an upper bound).
        return arena + params + scratch + op_scratch + staging +
               (any_conv ? options_.workspace_limit : 0) +
               linear_workspace_bytes(graph, options_, cc_major_, true);
    }

  private:
    // At startup, not at the first launch: the device's compute capability against the
    // architectures this binary was built for, then the runtime's own answer.
    void check_architecture() {
        KILN_CUDA_CHECK(cudaSetDevice(options_.device));
        int minor = 0;
        KILN_CUDA_CHECK(
            cudaDeviceGetAttribute(&cc_major_, cudaDevAttrComputeCapabilityMajor, options_.device));
        KILN_CUDA_CHECK(
            cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, options_.device));
        cudaDeviceProp props{};
        KILN_CUDA_CHECK(cudaGetDeviceProperties(&props, options_.device));
        const ArchVerdict verdict =
            check_cuda_arch(cc_major_, minor, KILN_CUDA_ARCHS,
                            std::to_string(options_.device) + " (" + props.name + ")");
        if (!verdict.runs)
            throw core::Error(core::ErrorCode::UNSUPPORTED, verdict.message);
        const cudaError_t image = kernels::kernel_image_status();
        if (image == cudaErrorNoKernelImageForDevice || image == cudaErrorInvalidDeviceFunction) {
            throw core::Error(core::ErrorCode::UNSUPPORTED, verdict.message +
                                                                "; the CUDA runtime finds no "
                                                                "kernel image for it (" +
                                                                cudaGetErrorString(image) + ")");
        }
        if (image != cudaSuccess) {
            throw core::Error(core::ErrorCode::INTERNAL,
                              std::string("cudaFuncGetAttributes on a kiln kernel: ") +
                                  cudaGetErrorString(image));
        }
    }

    CudaBackendOptions options_;
    int cc_major_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
    return std::make_unique<CudaBackend>(options);
}

}  // namespace kiln::engine::cuda
