// Counters and histograms the scheduler keeps for /metrics.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "scheduler/model_cache.h"
#include "scheduler/scheduler_error.h"

namespace kiln::scheduler {

// Cumulative buckets in seconds, Prometheus style.
struct Histogram {
    static constexpr std::array<double, 12> bounds = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                      5,    10,  30,   60,  300, 1800};
    std::array<uint64_t, bounds.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;

    void observe(double seconds) {
        for (size_t i = 0; i < bounds.size(); ++i)
            buckets[i] += seconds <= bounds[i] ? 1 : 0;
        ++count;
        sum += seconds;
    }
};

struct SchedulerStats {
    std::map<std::string, Histogram> queue_wait_by_model;  // created -> started
    std::map<std::string, Histogram> run_time_by_model;    // started -> finished
    std::map<SchedulerCode, uint64_t> refused_by_reason;   // admission refusals
    std::map<std::string, uint64_t> finished_by_status;    // since start
    size_t queued = 0;
    size_t running = 0;
    size_t pool_bytes_in_use = 0;  // all worker contexts
    size_t pool_bytes_cached = 0;
    size_t pool_bytes_peak = 0;      // sum of each worker context's high-water mark of in_use
    uint64_t plan_cache_hits = 0;    // jobs whose worker had their model's plans cached
    uint64_t plan_cache_misses = 0;  // jobs that started a fresh Upscaler
    std::vector<CachedModel> models;
};

}  // namespace kiln::scheduler
