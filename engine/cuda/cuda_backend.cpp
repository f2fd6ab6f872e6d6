#include "engine/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <sstream>

#include "engine/core/error.h"
#include "engine/cuda/cudnn_check.h"
#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/device_pool.h"
#include "engine/cuda/nvtx.h"
#include "engine/graph/memory_plan.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace kiln::engine::cuda {

namespace {

constexpr size_t kAlign = 256;

size_t align_up(size_t n) {
    return (n + kAlign - 1) / kAlign * kAlign;
}

class CudaContext final : public ExecutionContext {
  public:
    explicit CudaContext(int device) : device_(device) {
        KILN_CUDA_CHECK(cudaSetDevice(device));
        KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        const cudnnStatus_t status = cudnnCreate(&cudnn_);
        if (status != CUDNN_STATUS_SUCCESS) {
            cudaStreamDestroy(stream_);
            throw_cudnn_error(status, "cudnnCreate(&cudnn_)", __func__, __FILE__, __LINE__);
        }
        KILN_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
        pool_ = std::make_unique<DevicePool>(device, stream_);
    }
    ~CudaContext() override {
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
    int device() const { return device_; }

  private:
    int device_;
    cudaStream_t stream_ = nullptr;
    cudnnHandle_t cudnn_ = nullptr;
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

class CudaPlan final : public Plan {
  public:
    CudaPlan(const Graph& graph, CudaContext& context, const CudaBackendOptions& options)
        : context_(context) {
        KILN_CUDA_CHECK(cudaSetDevice(context.device()));
        if (graph.ops().empty() || graph.ops().back().kind != OpKind::OUTPUT)
            throw Error(ErrorCode::INTERNAL, "graph has no output");
        const cudaStream_t stream = context.stream();
        const MemoryPlan memory = plan_memory(buffer_lifetimes(graph), buffer_sizes(graph), kAlign);
        arena_ = DeviceBlock(context.pool(), memory.arena_bytes);
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

        // Parameters of every convolution in one block, uploaded once.
        std::vector<uint8_t> blob;
        std::vector<ConvParamOffsets> offsets;
        for (const Op& op : graph.ops()) {
            if (op.kind == OpKind::CONV2D)
                offsets.push_back(pack_conv_params(op.conv, op.epilogue, blob));
        }
        params_ = DeviceBlock(context.pool(), blob.size());
        weight_bytes_ = blob.size();
        if (!blob.empty()) {
            // From pageable memory: cudaMemcpyAsync stages it before returning.
            KILN_CUDA_CHECK(cudaMemcpyAsync(params_.get(), blob.data(), blob.size(),
                                            cudaMemcpyHostToDevice, stream));
        }
        const auto* params = static_cast<const uint8_t*>(params_.get());

        const Value& in_v = graph.value(graph.input_value());
        const Value& out_v = graph.value(graph.output_value());
        input_bytes_ = f32_bytes(in_v);
        output_bytes_ = f32_bytes(out_v);
        staging_ = DeviceBlock(context.pool(), align_up(input_bytes_) + align_up(output_bytes_));
        auto* dev_in = static_cast<float*>(staging_.get());
        auto* dev_out = reinterpret_cast<float*>(static_cast<uint8_t*>(staging_.get()) +
                                                 align_up(input_bytes_));
        dev_in_ = dev_in;
        dev_out_ = dev_out;
        pinned_in_ = PinnedBuffer(input_bytes_);
        pinned_out_ = PinnedBuffer(output_bytes_);

        size_t workspace = 0, scratch = 0;
        size_t conv_index = 0;
        for (const Op& op : graph.ops()) {
            switch (op.kind) {
                case OpKind::INPUT: {
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
                case OpKind::RESIZE_BICUBIC: {
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
            }
        }
        // One step per op; unnamed ops (input, output, resampling) are named by their kind
        // in NVTX ranges and op times.
        for (size_t i = 0; i < steps_.size(); ++i) {
            if (steps_[i].name.empty())
                steps_[i].name = op_kind_name(graph.ops()[i].kind);
        }
        workspace_ = DeviceBlock(context.pool(), workspace);
        scratch_ = DeviceBlock(context.pool(), scratch);
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
        peak_bytes_ = memory.arena_bytes + weight_bytes_ + staging_.size() + workspace + scratch;
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

    void run(const float* input, float* output, const RunControl& control) override {
        KILN_NVTX_RANGE("kiln plan run");
        KILN_CUDA_CHECK(cudaSetDevice(context_.device()));
        const cudaStream_t stream = context_.stream();
        std::memcpy(pinned_in_.get(), input, input_bytes_);
        KILN_CUDA_CHECK(cudaMemcpyAsync(dev_in_, pinned_in_.get(), input_bytes_,
                                        cudaMemcpyHostToDevice, stream));
        const int total = static_cast<int>(steps_.size());
        const bool timed = control.op_times != nullptr;
        if (graph_exec_ && !timed) {
            // One launch for every op: cancellation is checked before it, progress after.
            if (control.cancel && control.cancel->load(std::memory_order_relaxed)) {
                KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
                throw Error(ErrorCode::CANCELLED, "cancelled");
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
                throw Error(ErrorCode::CANCELLED, "cancelled");
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
        } catch (const Error& e) {
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

    CudaContext& context_;
    DeviceBlock arena_, params_, staging_, workspace_, scratch_;
    PinnedBuffer pinned_in_, pinned_out_;
    float* dev_in_ = nullptr;
    float* dev_out_ = nullptr;
    size_t input_bytes_ = 0, output_bytes_ = 0;
    std::vector<std::unique_ptr<CudnnConv>> convs_;
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
            throw Error(ErrorCode::INVALID_ARGUMENT,
                        "CUDA device " + std::to_string(options.device) + " does not exist (" +
                            std::to_string(count) + " found)");
        }
    }
    BackendKind kind() const override { return BackendKind::CUDA; }
    std::string name() const override { return "cuda"; }

    std::unique_ptr<ExecutionContext> create_context(const ContextOptions&) override {
        return std::make_unique<CudaContext>(options_.device);
    }

    std::unique_ptr<Plan> compile(const Graph& graph, ExecutionContext& context) override {
        auto* cuda = dynamic_cast<CudaContext*>(&context);
        if (!cuda)
            throw Error(ErrorCode::INTERNAL, "CUDA backend given a non-CUDA context");
        return std::make_unique<CudaPlan>(graph, *cuda, options_);
    }

    size_t estimate_peak_bytes(const Graph& graph) const override {
        const size_t arena =
            plan_memory(buffer_lifetimes(graph), buffer_sizes(graph), kAlign).arena_bytes;
        // Parameters: fp16 weights and biases, fp32 biases and slopes, each piece aligned;
        // scratch: packed copies of the largest convolution's input and output (used only
        // when cuDNN refuses the strided views); the workspace at its limit.
        size_t params = 0, scratch = 0;
        bool any_conv = false;
        for (const Op& op : graph.ops()) {
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
        const size_t staging = align_up(f32_bytes(graph.value(graph.input_value()))) +
                               align_up(f32_bytes(graph.value(graph.output_value())));
        return arena + params + scratch + staging + (any_conv ? options_.workspace_limit : 0);
    }

  private:
    CudaBackendOptions options_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
    return std::make_unique<CudaBackend>(options);
}

}  // namespace kiln::engine::cuda
