#include "engine/cpu/cpu_backend.h"

#include <omp.h>

#include <chrono>
#include <deque>
#include <dnnl.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "engine/cpu/cpu_attention.h"
#include "engine/cpu/cpu_gan_ops.h"
#include "engine/cpu/cpu_unet_ops.h"
#include "engine/cpu/cpu_window_attention.h"
#include "engine/cpu/host_pool.h"
#include "engine/graph/memory_plan.h"
#include "engine/pool_block.h"

namespace kiln::engine::cpu {

namespace {

class CpuContext final : public ExecutionContext {
  public:
    explicit CpuContext(int threads) : threads_(threads) {}
    BackendKind kind() const override { return BackendKind::CPU; }
    int threads() const override { return threads_; }
    MemoryPool& pool() override { return pool_; }

  private:
    int threads_;
    HostPool pool_;
};

struct BufferLayout {
    int block = 0;
    bool planar = false;
};

// Layout of every buffer. Wide buffers are blocked when every view of it starts on a block
// and only the buffer's last view may end inside one (its padding). Thin buffers (fewer
// channels than a block) are plain NHWC unless a convolution touches them: oneDNN's fast
// kernels read a thin input only as planar NCHW and write a thin output only blocked.
std::vector<BufferLayout> choose_layouts(const Graph& graph, int block) {
    const auto& buffers = graph.buffers();
    std::vector<BufferLayout> layouts(buffers.size());
    for (size_t b = 0; b < buffers.size(); ++b) {
        layouts[b].block = buffers[b].c < block ? 0 : block;
    }
    for (const Value& v : graph.values()) {
        const int total = buffers[static_cast<size_t>(v.buffer)].c;
        const bool aligned =
            v.c_offset % block == 0 && (v.c % block == 0 || v.c_offset + v.c == total);
        if (!aligned)
            layouts[static_cast<size_t>(v.buffer)].block = 0;
    }
    for (const Op& op : graph.ops()) {
        if (op.kind != OpKind::CONV2D)
            continue;
        const Value& dst = graph.value(op.output);
        const auto d = static_cast<size_t>(dst.buffer);
        if (buffers[d].c < block && dst.c_offset == 0)
            layouts[d] = {block, false};
    }
    for (const Op& op : graph.ops()) {
        if (op.kind != OpKind::CONV2D)
            continue;
        const Value& src = graph.value(op.inputs[0]);
        const auto b = static_cast<size_t>(src.buffer);
        if (buffers[b].c < block && src.c_offset == 0)
            layouts[b] = {0, true};
    }
    return layouts;
}

// Scratch of a norm or attention op with `slots` threads (what the plan will ask for).
size_t non_conv_scratch_bytes(const Graph& graph, const Op& op, int slots) {
    switch (op.kind) {
        case OpKind::GROUP_NORM:
            return GroupNormOp::scratch_bytes_for(graph.value(op.inputs[0]).c, slots);
        case OpKind::LAYER_NORM:
            return LayerNormOp::scratch_bytes_for(graph.value(op.inputs[0]).c, slots);
        case OpKind::ATTENTION: {
            const Value& q = graph.value(op.inputs[0]);
            const Value& k = graph.value(op.inputs[1]);
            return AttentionOp::scratch_bytes_for(q.h * q.w, k.h * k.w, q.c, op.attention.heads,
                                                  slots);
        }
        case OpKind::WINDOW_ATTENTION:
            return WindowAttentionOp::scratch_bytes_for(op.window.window, graph.value(op.output).c,
                                                        slots);
        default:
            return 0;
    }
}

struct Step {
    std::string name;
    std::function<void(dnnl::stream&, int)> run;
};

class CpuPlan final : public Plan {
  public:
    CpuPlan(const Graph& graph, CpuContext& context, const CpuBackendOptions& options)
        : context_(context), engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
        const int block = options.block > 0 ? options.block : native_channel_block();
        // oneDNN chooses implementations for the thread count in force when a primitive is
        // created (Winograd 2x3 vs 4x3, for one): the count the plan will run with.
        omp_set_num_threads(context.threads());
        const auto layouts = choose_layouts(graph, block);
        const auto& buffers = graph.buffers();
        const ValueId output_value = graph.output_value();
        const int output_buffer = graph.value(output_value).buffer;

        std::vector<size_t> sizes(buffers.size());
        for (size_t b = 0; b < buffers.size(); ++b) {
            sizes[b] =
                static_cast<int>(b) == output_buffer
                    ? 0  // written straight to the caller's array
                    : buffer_bytes(buffers[b].h, buffers[b].w, buffers[b].c, layouts[b].block);
        }
        const MemoryPlan memory = plan_memory(buffer_lifetimes(graph), sizes);
        arena_ = PoolBlock(context.pool(), memory.arena_bytes);
        float* arena = static_cast<float*>(arena_.get());

        auto view = [&](ValueId id) {
            const Value& v = graph.value(id);
            const auto b = static_cast<size_t>(v.buffer);
            CpuView out;
            out.buffer = arena + memory.offsets[b] / sizeof(float);
            out.layout = {
                v.h, v.w, v.c, buffers[b].c, v.c_offset, layouts[b].block, layouts[b].planar};
            channel_tables_.push_back(out.layout.channel_offsets());
            out.coff = channel_tables_.back().data();
            return out;
        };

        // The scratch region is shared: convolutions' scratchpads and the other ops' work
        // space are never in use at the same time.
        size_t scratch = 0;
        const int slots = op_thread_slots(context.threads());
        for (const Op& op : graph.ops()) {
            switch (op.kind) {
                case OpKind::INPUT: {
                    const CpuView dst = view(op.output);
                    const size_t index = input_floats_.size();
                    input_floats_.push_back(static_cast<size_t>(dst.layout.pixels()) *
                                            static_cast<size_t>(dst.layout.c));
                    steps_.push_back({op.name, [this, dst, index](dnnl::stream&, int t) {
                                          op_copy_in(inputs_[index], dst, t);
                                      }});
                    break;
                }
                case OpKind::OUTPUT: {
                    const CpuView src = view(op.inputs[0]);
                    output_floats_ = static_cast<size_t>(src.layout.pixels()) *
                                     static_cast<size_t>(src.layout.c);
                    steps_.push_back({op.name, [this, src](dnnl::stream&, int t) {
                                          op_copy_out(src, output_, t);
                                      }});
                    break;
                }
                case OpKind::CONV2D: {
                    ConvSetup setup;
                    setup.weights = &op.conv;
                    setup.epilogue = &op.epilogue;
                    setup.src = view(op.inputs[0]);
                    setup.dst = view(op.output);
                    for (const ResidualAdd& add : op.epilogue.adds) {
                        setup.residuals.push_back(view(add.residual));
                    }
                    setup.algorithm = options.conv_algorithm;
                    // The epilogue (prelu slopes) must outlive the plan: keep a copy.
                    epilogues_.push_back(std::make_unique<Epilogue>(op.epilogue));
                    weights_.push_back(std::make_unique<ConvWeights>(op.conv));
                    setup.epilogue = epilogues_.back().get();
                    setup.weights = weights_.back().get();
                    convs_.push_back(std::make_unique<OnednnConv>(engine_, setup));
                    OnednnConv* conv = convs_.back().get();
                    scratch = std::max(scratch, conv->scratchpad_bytes());
                    weight_bytes_ += conv->weight_bytes();
                    descriptions_.push_back(op.name + ": " + conv->describe());
                    steps_.push_back(
                        {op.name, [conv](dnnl::stream& s, int t) { conv->execute(s, t); }});
                    break;
                }
                case OpKind::UPSAMPLE_NEAREST:
                case OpKind::UPSAMPLE_BILINEAR:
                case OpKind::RESIZE_BILINEAR:
                case OpKind::PIXEL_SHUFFLE:
                case OpKind::PIXEL_UNSHUFFLE:
                case OpKind::RESIZE_BICUBIC: {
                    const CpuView src = view(op.inputs[0]);
                    const CpuView dst = view(op.output);
                    const int f = op.factor;
                    const OpKind kind = op.kind;
                    steps_.push_back({op.name, [src, dst, f, kind](dnnl::stream&, int t) {
                                          switch (kind) {
                                              case OpKind::UPSAMPLE_NEAREST:
                                                  op_upsample_nearest(src, dst, f, t);
                                                  break;
                                              case OpKind::UPSAMPLE_BILINEAR:
                                              case OpKind::RESIZE_BILINEAR:
                                                  op_resize_bilinear(src, dst, t);
                                                  break;
                                              case OpKind::PIXEL_SHUFFLE:
                                                  op_pixel_shuffle(src, dst, f, t);
                                                  break;
                                              case OpKind::RESIZE_BICUBIC:
                                                  op_resize_bicubic(src, dst, t);
                                                  break;
                                              default:
                                                  op_pixel_unshuffle(src, dst, f, t);
                                                  break;
                                          }
                                      }});
                    break;
                }
                case OpKind::ADD: {
                    const AddOp add(view(op.inputs[0]), view(op.inputs[1]), view(op.output),
                                    op.scale);
                    steps_.push_back({op.name, [add](dnnl::stream&, int t) { add.run(t); }});
                    break;
                }
                case OpKind::ACTIVATION: {
                    const ActivationOp act(view(op.inputs[0]), view(op.output), op.act);
                    steps_.push_back({op.name, [act](dnnl::stream&, int t) { act.run(t); }});
                    break;
                }
                case OpKind::GEGLU: {
                    const GegluOp geglu(view(op.inputs[0]), view(op.output));
                    steps_.push_back({op.name, [geglu](dnnl::stream&, int t) { geglu.run(t); }});
                    break;
                }
                case OpKind::CONCAT: {
                    const ConcatOp concat(view(op.inputs[0]), view(op.inputs[1]), view(op.output));
                    steps_.push_back({op.name, [concat](dnnl::stream&, int t) { concat.run(t); }});
                    break;
                }
                case OpKind::GROUP_NORM: {
                    auto norm = std::make_shared<const GroupNormOp>(
                        view(op.inputs[0]), view(op.output), op.norm, slots);
                    scratch = std::max(scratch, norm->scratch_bytes());
                    steps_.push_back(
                        {op.name, [this, norm](dnnl::stream&, int) { norm->run(scratch_.get()); }});
                    break;
                }
                case OpKind::LAYER_NORM: {
                    auto norm = std::make_shared<const LayerNormOp>(
                        view(op.inputs[0]), view(op.output), op.norm, slots);
                    scratch = std::max(scratch, norm->scratch_bytes());
                    steps_.push_back(
                        {op.name, [this, norm](dnnl::stream&, int) { norm->run(scratch_.get()); }});
                    break;
                }
                case OpKind::GLOBAL_AVG_POOL: {
                    const GlobalAvgPoolOp pool(view(op.inputs[0]), view(op.output));
                    steps_.push_back({op.name, [pool](dnnl::stream&, int t) { pool.run(t); }});
                    break;
                }
                case OpKind::MUL: {
                    const MulOp mul(view(op.inputs[0]), view(op.inputs[1]), view(op.output));
                    steps_.push_back({op.name, [mul](dnnl::stream&, int t) { mul.run(t); }});
                    break;
                }
                case OpKind::CROP: {
                    const CropOp crop(view(op.inputs[0]), view(op.output), op.crop_top,
                                      op.crop_left);
                    steps_.push_back({op.name, [crop](dnnl::stream&, int t) { crop.run(t); }});
                    break;
                }
                case OpKind::MAX_POOL: {
                    const MaxPoolOp pool(view(op.inputs[0]), view(op.output), op.pool_kernel,
                                         op.pool_stride);
                    steps_.push_back({op.name, [pool](dnnl::stream&, int t) { pool.run(t); }});
                    break;
                }
                case OpKind::WINDOW_ATTENTION: {
                    auto attention = std::make_shared<const WindowAttentionOp>(
                        view(op.inputs[0]), view(op.output), op.window, slots);
                    scratch = std::max(scratch, attention->scratch_bytes());
                    steps_.push_back({op.name, [this, attention](dnnl::stream&, int) {
                                          attention->run(scratch_.get());
                                      }});
                    break;
                }
                case OpKind::CHANNEL_ATTENTION: {
                    const ChannelAttentionOp attention(view(op.inputs[0]), view(op.output),
                                                       op.window);
                    steps_.push_back(
                        {op.name, [attention](dnnl::stream&, int t) { attention.run(t); }});
                    break;
                }
                case OpKind::ATTENTION: {
                    auto attention = std::make_shared<const AttentionOp>(
                        view(op.inputs[0]), view(op.inputs[1]), view(op.inputs[2]), view(op.output),
                        op.attention, slots);
                    scratch = std::max(scratch, attention->scratch_bytes());
                    descriptions_.push_back(op.name + ": " + attention->describe());
                    steps_.push_back({op.name, [this, attention](dnnl::stream&, int) {
                                          attention->run(scratch_.get());
                                      }});
                    break;
                }
            }
        }
        // The output op writes the caller's array; everything else lives in the arena.
        if (graph.ops().back().kind != OpKind::OUTPUT) {
            throw core::Error(core::ErrorCode::INTERNAL, "graph has no output");
        }
        inputs_.assign(input_floats_.size(), nullptr);
        scratch_ = PoolBlock(context.pool(), scratch);
        for (auto& conv : convs_)
            conv->bind_scratchpad(scratch_.get());
        peak_bytes_ = memory.arena_bytes + scratch + weight_bytes_;
    }

    size_t peak_bytes() const override { return peak_bytes_; }
    size_t weight_bytes() const override { return weight_bytes_; }

    void run_batch(std::span<const float* const> inputs,
                   float* output,
                   int batch,
                   const RunControl& control) override {
        if (inputs.size() != input_floats_.size()) {
            throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                              "plan takes " + std::to_string(input_floats_.size()) +
                                  " inputs, given " + std::to_string(inputs.size()));
        }
        const int threads = context_.threads();
        omp_set_num_threads(threads);
        const int per_sample = static_cast<int>(steps_.size());
        const int total = per_sample * batch;
        for (int n = 0; n < batch; ++n) {
            for (size_t i = 0; i < inputs.size(); ++i)
                inputs_[i] = inputs[i] + input_floats_[i] * static_cast<size_t>(n);
            output_ = output + output_floats_ * static_cast<size_t>(n);
            run_steps(control, n * per_sample, total);
        }
        stream_.wait();
    }

    std::string describe() const override {
        std::ostringstream out;
        for (const std::string& d : descriptions_)
            out << d << '\n';
        return out.str();
    }

  private:
    void run_steps(const RunControl& control, int done_before, int total) {
        const int threads = context_.threads();
        const int count = static_cast<int>(steps_.size());
        for (int i = 0; i < count; ++i) {
            if (control.cancel && control.cancel->load(std::memory_order_relaxed)) {
                throw core::Error(core::ErrorCode::CANCELLED, "cancelled");
            }
            const auto start = std::chrono::steady_clock::now();
            steps_[static_cast<size_t>(i)].run(stream_, threads);
            if (control.op_times) {
                control.op_times->emplace_back(
                    steps_[static_cast<size_t>(i)].name,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                        .count());
            }
            if (control.on_op)
                control.on_op(done_before + i + 1, total);
        }
    }

    CpuContext& context_;
    dnnl::engine engine_;
    PoolBlock arena_;
    PoolBlock scratch_;
    std::vector<std::unique_ptr<Epilogue>> epilogues_;
    std::vector<std::unique_ptr<ConvWeights>> weights_;
    std::vector<std::unique_ptr<OnednnConv>> convs_;
    std::vector<Step> steps_;
    std::deque<std::vector<int64_t>> channel_tables_;  // stable addresses for CpuView::coff
    dnnl::stream stream_;
    std::vector<std::string> descriptions_;
    std::vector<size_t> input_floats_;  // floats of one sample of each input
    size_t output_floats_ = 0;
    std::vector<const float*> inputs_;  // the current sample's inputs while running
    float* output_ = nullptr;
    size_t weight_bytes_ = 0;
    size_t peak_bytes_ = 0;
};

class CpuBackend final : public Backend {
  public:
    explicit CpuBackend(const CpuBackendOptions& options) : options_(options) {}
    BackendKind kind() const override { return BackendKind::CPU; }
    std::string name() const override { return "cpu"; }

    std::unique_ptr<ExecutionContext> create_context(const ContextOptions& options) override {
        int threads = options.threads;
        if (threads <= 0)
            threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        // Never more than OpenMP will give (OMP_THREAD_LIMIT): oneDNN partitions its work for
        // the count a primitive was created with, and a team smaller than that leaves parts
        // of the output unwritten (measured: attention NMSE 0.46, RRDBNet tiles off by 1.4).
        threads = std::min(threads, std::max(1, omp_get_thread_limit()));
        return std::make_unique<CpuContext>(threads);
    }

    std::unique_ptr<Plan> compile(const Graph& graph, ExecutionContext& context) override {
        auto* cpu = dynamic_cast<CpuContext*>(&context);
        if (!cpu)
            throw core::Error(core::ErrorCode::INTERNAL, "CPU backend given a non-CPU context");
        return std::make_unique<CpuPlan>(graph, *cpu, options_);
    }

    size_t estimate_peak_bytes(const Graph& graph) const override {
        const int block = options_.block > 0 ? options_.block : native_channel_block();
        const auto& buffers = graph.buffers();
        const auto layouts = choose_layouts(graph, block);
        std::vector<size_t> sizes(buffers.size());
        for (size_t b = 0; b < buffers.size(); ++b) {
            sizes[b] = buffer_bytes(buffers[b].h, buffers[b].w, buffers[b].c, layouts[b].block);
        }
        const size_t arena = plan_memory(buffer_lifetimes(graph), sizes).arena_bytes;
        // Weights are counted at fp32 (Winograd's transformed weights are 4x larger for
        // 3x3 kernels) and the scratchpad as four times the largest convolution's input plus
        // output (Winograd's transformed tiles) plus its transformed weights. Norms and
        // attention need work space too; the plan shares one region among all ops, so the
        // sum of the two maxima bounds it.
        size_t weights = 0, scratch = 0, op_scratch = 0;
        const int slots = op_thread_slots(0);
        for (const Op& op : graph.ops()) {
            // A plan's context may have any thread count up to `slots` (attention's tiles
            // shrink as threads grow, so the scratch is not monotonic in it).
            for (int t = 1; t <= slots; ++t)
                op_scratch = std::max(op_scratch, non_conv_scratch_bytes(graph, op, t));
            if (op.kind != OpKind::CONV2D)
                continue;
            const size_t k = op.conv.kernel == 3 ? 4 : 1;
            const size_t conv_weights = op.conv.weight->size() * sizeof(float) * k;
            weights += conv_weights;
            const Value& in = graph.value(op.inputs[0]);
            const Value& out = graph.value(op.output);
            // Winograd F(4,3) may also keep the layer's transformed weights in its
            // scratchpad (measured: 4.5x in + out with them on a 128->256 unpadded layer).
            scratch = std::max(scratch, 4 * (buffer_bytes(in.h, in.w, in.c, block) +
                                             buffer_bytes(out.h, out.w, out.c, block)) +
                                            (k == 4 ? conv_weights : 0));
        }
        scratch += op_scratch;
        // oneDNN keeps per-thread Winograd buffers of a few hundred KiB whatever the shape.
        constexpr size_t kFixedScratch = size_t{1} << 20;
        return arena + weights + scratch + kFixedScratch;
    }

  private:
    CpuBackendOptions options_;
};

}  // namespace

int native_channel_block() {
    return dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core ? 16 : 8;
}

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options) {
    return std::make_unique<CpuBackend>(options);
}

}  // namespace kiln::engine::cpu
