// Chrome trace-event recording (`--trace file.json`): complete ("ph": "X") events per job,
// model forward and op, on either backend, written as
// {"traceEvents": [{"name", "cat", "ph": "X", "ts", "dur", "pid", "tid", "args"}, ...]}
// (microseconds), which Perfetto and chrome://tracing open. The same ranges are NVTX ranges in
// CUDA builds with KILN_NVTX, so Nsight Systems shows them too.
//
// Backends are not changed for it: run_traced() asks the plan for RunControl::op_times and
// lays the op times out back to back from the start of the run (CPU: wall time of each op;
// CUDA: GPU time between events around each op, eager launches). Op events therefore nest in
// their run's range but their start times are reconstructed, not measured.
#pragma once

#include <chrono>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"

namespace kiln::engine {

struct TraceEvent {
    std::string name;
    std::string category;  // "job", "forward", "op", ...
    double ts_us = 0;      // since the trace began
    double dur_us = 0;
    int tid = 0;
    std::vector<std::pair<std::string, std::string>> args;
};

class Trace {
  public:
    Trace();
    Trace(const Trace&) = delete;
    Trace& operator=(const Trace&) = delete;

    // Microseconds since the trace was created (steady clock).
    double now_us() const;
    // Thread-safe.
    void add(TraceEvent event);
    std::vector<TraceEvent> events() const;
    // The Chrome trace JSON document.
    std::string to_json() const;
    // Throws core::Error(IO) when the file cannot be written.
    void write_file(const std::string& path) const;

    // A small stable number for the calling thread (the events' tid).
    static int thread_id();

  private:
    std::chrono::steady_clock::time_point start_;
    mutable std::mutex mutex_;
    std::vector<TraceEvent> events_;
};

// An X event from construction to destruction, and an NVTX range in CUDA builds with
// KILN_NVTX; `trace` may be null (NVTX only, e.g. per job in the server).
class TraceRange {
  public:
    TraceRange(Trace* trace, std::string name, std::string category);
    ~TraceRange();
    TraceRange(const TraceRange&) = delete;
    TraceRange& operator=(const TraceRange&) = delete;
    void arg(std::string key, std::string value);

  private:
    Trace* trace_;
    TraceEvent event_;
    bool nvtx_ = false;
};

// plan.run_batch(inputs, output, batch, control), plus, when control.trace is set, a
// "forward" range named `name` and one "op" event per op of each sample (from op times; the
// caller's own op_times, if any, still receive them). Without a trace it is run_batch.
void run_traced(Plan& plan,
                std::span<const float* const> inputs,
                float* output,
                int batch,
                const RunControl& control,
                const std::string& name = "forward");

// One-input convenience, as Plan::run.
inline void run_traced(Plan& plan,
                       const float* input,
                       float* output,
                       const RunControl& control,
                       const std::string& name = "forward") {
    const float* inputs[1] = {input};
    run_traced(plan, inputs, output, 1, control, name);
}

}  // namespace kiln::engine
