// The backend interface model code and pipelines run on. A Backend compiles a Graph into a
// Plan for one input shape; a Plan runs on an ExecutionContext (a thread team on the CPU, a
// stream on CUDA) and allocates nothing while it runs: its memory comes from the context's
// pool when the plan is built, so its peak bytes are known before anything runs.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/graph/graph.h"

namespace kiln::engine {

enum class BackendKind { CPU, CUDA };

class Trace;  // engine/trace.h

// Host memory cache of one execution context: blocks are reused by size so building the
// second plan of a shape costs no fresh allocation.
class MemoryPool {
  public:
    virtual ~MemoryPool() = default;
    // Throws core::Error(OUT_OF_MEMORY) on failure.
    virtual void* allocate(size_t bytes) = 0;
    virtual void release(void* ptr, size_t bytes) = 0;
    virtual size_t bytes_in_use() const = 0;
    virtual size_t bytes_cached() const = 0;
    // High-water mark of bytes_in_use() since the pool was made.
    virtual size_t peak_bytes() const = 0;
};

struct ContextOptions {
    int threads = 0;  // 0: all hardware threads
    // Freed bytes a device pool keeps reserved past a synchronisation (CUDA's release
    // threshold); SIZE_MAX keeps all of them for the next plan, 0 returns them to the device
    // (a context that holds no plan: admission). CPU contexts ignore it.
    size_t pool_keep_bytes = SIZE_MAX;
};

class ExecutionContext {
  public:
    virtual ~ExecutionContext() = default;
    virtual BackendKind kind() const = 0;
    virtual int threads() const = 0;
    virtual MemoryPool& pool() = 0;
};

// Cancellation and progress for one run: checked between ops ("stops within one layer").
struct RunControl {
    const std::atomic<bool>* cancel = nullptr;
    std::function<void(int done, int total)> on_op;  // optional
    // When set, each op's name and wall time in seconds are appended (profiling).
    std::vector<std::pair<std::string, double>>* op_times = nullptr;
    // When set, engine::run_traced() (engine/trace.h) records the run and its ops as Chrome
    // trace events; backends themselves do not read it.
    Trace* trace = nullptr;
};

class Plan {
  public:
    virtual ~Plan() = default;
    // Peak bytes this plan holds while it runs: activations, weights in backend layout and
    // scratch. Known when the plan is built.
    virtual size_t peak_bytes() const = 0;
    virtual size_t weight_bytes() const = 0;
    // input: NHWC float [h, w, c] of the graph's input shape; output: NHWC of its output.
    // Throws core::Error(CANCELLED) when control.cancel becomes true.
    void run(const float* input, float* output, const RunControl& control) {
        const float* inputs[1] = {input};
        run_batch(inputs, output, 1, control);
    }
    // Runs the graph on `batch` samples, one after another. inputs[i] holds `batch`
    // consecutive NHWC samples of the graph's input i (in declaration order); output receives
    // `batch` consecutive samples. Samples never mix: the graph describes one sample.
    virtual void run_batch(std::span<const float* const> inputs,
                           float* output,
                           int batch,
                           const RunControl& control) = 0;
    virtual std::string describe() const = 0;  // per-op implementation choices, for logs
};

class Backend {
  public:
    virtual ~Backend() = default;
    virtual BackendKind kind() const = 0;
    virtual std::string name() const = 0;
    virtual std::unique_ptr<ExecutionContext> create_context(const ContextOptions& options) = 0;
    virtual std::unique_ptr<Plan> compile(const Graph& graph, ExecutionContext& context) = 0;
    // Upper estimate of a compiled plan's peak_bytes(), without compiling: admission control
    // and tile choice use it before any work is done.
    virtual size_t estimate_peak_bytes(const Graph& graph) const = 0;
};

}  // namespace kiln::engine
