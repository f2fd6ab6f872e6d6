// Loaded models of every task kind, shared by every worker and by admission: one load for
// concurrent first users, least recently used evicted when over the memory budget, never while
// a job holds it. A cached model is found by name without reading the registry again. Each
// model also keeps its task's plans (TaskModel::make_plans; for upscaling, one Upscaler) per
// worker execution context, so a worker's second job of a model and window shape reuses the
// compiled plans (oneDNN primitives, reordered weights, activations); the plans' bytes count
// against the same budget and go with the model when it is evicted.
//
// Plans are destroyed only on the thread of the worker that owns their context (on CUDA, the
// thread that enqueues on and captures graphs on the context's stream). An eviction, which
// any thread may cause (a submit's acquire(), another worker's job), only retires the
// victim's plans: they move, with the model they refer to, to a per-context list that the
// owning worker drains with release_retired() before its next job.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "scheduler/task.h"
#include "weights/registry.h"

namespace kiln::scheduler {

struct CachedModel {
    std::string name;
    size_t memory_bytes = 0;  // weights as loaded
    size_t plan_bytes = 0;    // compiled plans kept for reuse, all worker contexts
    size_t plan_contexts = 0;
};

class ModelCache {
  public:
    ModelCache(weights::ModelRegistry& registry, size_t budget_bytes);

    // Loads on first use (blocking the callers that asked meanwhile). Throws kiln::core::Error
    // (NOT_FOUND for an unknown name). The model stays cached at least while held.
    std::shared_ptr<const TaskModel> acquire(const std::string& name);
    std::vector<CachedModel> loaded() const;

    // The plans `context`'s worker keeps for `model` (acquired from this cache under `name`),
    // made on first use; null when the model's task keeps none. Only that worker may run them,
    // one job at a time, while it holds `model`. The caller keeps `model` alive longer than
    // the returned pointer.
    std::shared_ptr<TaskPlans> plans(const std::string& name,
                                     const std::shared_ptr<const TaskModel>& model,
                                     engine::Backend& backend,
                                     engine::ExecutionContext& context);
    // After a job: `grown` is how much the context's pool use grew over the run, i.e. the
    // plans the job added to the context's plans for `name` (plans allocate when built and
    // nothing while they run). When those plans hold over `max_bytes` they are dropped (their
    // plans are freed when the worker lets go of it), so odd image sizes cannot pile up
    // plans; then models over the budget are evicted. Called by `context`'s own worker.
    void account_plans(const std::string& name,
                       const engine::ExecutionContext& context,
                       int64_t grown,
                       size_t max_bytes);
    // Running total of the plan bytes on `context` that release_retired() freed: the
    // scheduler adds what was freed during a job back to the pool growth it measured.
    uint64_t plans_released(const engine::ExecutionContext& context) const;
    // Whether evictions left plans of `context` waiting for its worker.
    bool has_retired(const engine::ExecutionContext& context) const;
    // Destroys, on the calling thread, the plans of `context` that evictions retired. Only
    // `context`'s own worker calls it (before each job, and when woken for it).
    void release_retired(const engine::ExecutionContext& context);
    // Called (with no lock of the cache held) after an eviction retired plans, so the owning
    // workers can wake and release them. Set once, before any worker runs.
    void set_retired_listener(std::function<void()> listener);
    // Frees every plan built on `context`, retired or cached, on the calling thread: the
    // context's worker as it stops, or after it has stopped (before the context is destroyed).
    void drop_plans(const engine::ExecutionContext& context);
    // Reuse counters: jobs that found their model's plans cached, and that made them.
    uint64_t plan_hits() const;
    uint64_t plan_misses() const;

  private:
    struct PlanEntry {
        std::shared_ptr<TaskPlans> plans;
        size_t bytes = 0;
    };
    struct Slot {
        std::shared_future<std::shared_ptr<const TaskModel>> model;
        size_t bytes = 0;
        uint64_t last_used = 0;
        bool ready = false;
        // Declared after `model`: destroyed first, since plans refer to the model.
        std::map<const engine::ExecutionContext*, PlanEntry> plans;
        size_t plan_bytes() const;
    };

    // Plans evicted with their model, waiting for their context's worker; holds the model the
    // plans refer to.
    struct RetiredPlan {
        std::shared_ptr<const TaskModel> model;
        std::shared_ptr<TaskPlans> plans;
        size_t bytes = 0;
    };

    // True when plans were retired (the caller tells the listener once unlocked).
    bool evict_over_budget(const std::string& keep);
    void notify_retired() const;

    weights::ModelRegistry& registry_;
    size_t budget_bytes_;
    mutable std::mutex mutex_;
    std::map<std::string, Slot> slots_;
    uint64_t clock_ = 0;
    std::map<const engine::ExecutionContext*, uint64_t> released_;
    std::map<const engine::ExecutionContext*, std::vector<RetiredPlan>> retired_;
    std::function<void()> retired_listener_;
    uint64_t plan_hits_ = 0;
    uint64_t plan_misses_ = 0;
};

}  // namespace kiln::scheduler
