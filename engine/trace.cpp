#include "engine/trace.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/cuda/nvtx.h"  // KILN_NVTX ranges; nothing without KILN_NVTX

namespace kiln::engine {

namespace {

#if defined(KILN_NVTX)
void nvtx_push(const std::string& name) {
    nvtxEventAttributes_t attr{};
    attr.version = NVTX_VERSION;
    attr.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    attr.messageType = NVTX_MESSAGE_TYPE_ASCII;
    attr.message.ascii = name.c_str();
    nvtxDomainRangePushEx(cuda::nvtx_domain(), &attr);
}
void nvtx_pop() {
    nvtxDomainRangePop(cuda::nvtx_domain());
}
constexpr bool kNvtx = true;
#else
void nvtx_push(const std::string&) {}
void nvtx_pop() {}
constexpr bool kNvtx = false;
#endif

}  // namespace

Trace::Trace() : start_(std::chrono::steady_clock::now()) {}

double Trace::now_us() const {
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start_)
        .count();
}

void Trace::add(TraceEvent event) {
    const std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(std::move(event));
}

std::vector<TraceEvent> Trace::events() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return events_;
}

int Trace::thread_id() {
    static std::atomic<int> next{1};
    thread_local const int id = next.fetch_add(1);
    return id;
}

std::string Trace::to_json() const {
    nlohmann::json events = nlohmann::json::array();
    for (const TraceEvent& e : this->events()) {
        nlohmann::json args = nlohmann::json::object();
        for (const auto& [k, v] : e.args)
            args[k] = v;
        events.push_back({{"name", e.name},
                          {"cat", e.category},
                          {"ph", "X"},
                          {"ts", e.ts_us},
                          {"dur", e.dur_us},
                          {"pid", 1},
                          {"tid", e.tid},
                          {"args", std::move(args)}});
    }
    const nlohmann::json doc = {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
    return doc.dump();
}

void Trace::write_file(const std::string& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out)
        throw core::Error(core::ErrorCode::IO, "cannot write trace " + path);
    out << to_json() << '\n';
    if (!out)
        throw core::Error(core::ErrorCode::IO, "cannot write trace " + path);
}

TraceRange::TraceRange(Trace* trace, std::string name, std::string category) : trace_(trace) {
    event_.name = std::move(name);
    event_.category = std::move(category);
    event_.tid = Trace::thread_id();
    if (kNvtx) {
        nvtx_push(event_.name);
        nvtx_ = true;
    }
    if (trace_)
        event_.ts_us = trace_->now_us();
}

TraceRange::~TraceRange() {
    if (trace_) {
        event_.dur_us = trace_->now_us() - event_.ts_us;
        trace_->add(std::move(event_));
    }
    if (nvtx_)
        nvtx_pop();
}

void TraceRange::arg(std::string key, std::string value) {
    event_.args.emplace_back(std::move(key), std::move(value));
}

void run_traced(Plan& plan,
                std::span<const float* const> inputs,
                float* output,
                int batch,
                const RunControl& control,
                const std::string& name) {
    if (!control.trace) {
        TraceRange nvtx_only(nullptr, name, "forward");
        plan.run_batch(inputs, output, batch, control);
        return;
    }
    Trace& trace = *control.trace;
    std::vector<std::pair<std::string, double>> times;
    RunControl inner = control;
    inner.op_times = &times;
    const int tid = Trace::thread_id();
    TraceEvent forward{name, "forward", 0, 0, tid, {{"batch", std::to_string(batch)}}};
    {
        TraceRange nvtx_only(nullptr, name, "forward");
        forward.ts_us = trace.now_us();
        plan.run_batch(inputs, output, batch, inner);
        forward.dur_us = trace.now_us() - forward.ts_us;
    }
    // Ops back to back from the run's start, squeezed into the run's range if their sum is
    // longer (it cannot be on the CPU; on CUDA it is GPU time, bounded by the run's wall time).
    double total = 0;
    for (const auto& [op, seconds] : times)
        total += seconds > 0 ? seconds * 1e6 : 0.0;
    const double squeeze = total > forward.dur_us && total > 0 ? forward.dur_us / total : 1.0;
    double ts = forward.ts_us;
    const double end = forward.ts_us + forward.dur_us;
    for (const auto& [op, seconds] : times) {
        const double dur =
            std::max(0.0, std::min((seconds > 0 ? seconds * 1e6 : 0.0) * squeeze, end - ts));
        trace.add({op, "op", ts, dur, tid, {}});
        ts += dur;
    }
    trace.add(std::move(forward));
    if (control.op_times)
        control.op_times->insert(control.op_times->end(), times.begin(), times.end());
}

}  // namespace kiln::engine
