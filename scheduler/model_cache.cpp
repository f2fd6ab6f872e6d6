#include "scheduler/model_cache.h"

#include <algorithm>

namespace kiln::scheduler {

ModelCache::ModelCache(weights::ModelRegistry& registry, size_t budget_bytes)
    : registry_(registry), budget_bytes_(budget_bytes) {}

std::shared_ptr<const TaskModel> ModelCache::acquire(const std::string& name) {
    std::unique_lock lock(mutex_);
    auto it = slots_.find(name);
    if (it != slots_.end()) {
        it->second.last_used = ++clock_;
        auto future = it->second.model;
        const bool retired = evict_over_budget(name);  // models released since the last load
        lock.unlock();
        if (retired)
            notify_retired();
        return future.get();  // rethrows the loader's error
    }
    std::promise<std::shared_ptr<const TaskModel>> promise;
    Slot& slot = slots_[name];
    slot.model = promise.get_future().share();
    slot.last_used = ++clock_;
    lock.unlock();

    std::shared_ptr<const TaskModel> model;
    try {
        model = load_task_model(registry_, name);
    } catch (...) {
        promise.set_exception(std::current_exception());
        lock.lock();
        slots_.erase(name);  // the next request tries again
        throw;
    }
    promise.set_value(model);
    lock.lock();
    auto loaded_it = slots_.find(name);
    if (loaded_it != slots_.end()) {
        loaded_it->second.bytes = model->memory_bytes();
        loaded_it->second.ready = true;
    }
    const bool retired = evict_over_budget(name);
    lock.unlock();
    if (retired)
        notify_retired();
    return model;
}

size_t ModelCache::Slot::plan_bytes() const {
    size_t total = 0;
    for (const auto& [context, entry] : plans)
        total += entry.bytes;
    return total;
}

std::shared_ptr<TaskPlans> ModelCache::plans(const std::string& name,
                                             const std::shared_ptr<const TaskModel>& model,
                                             engine::Backend& backend,
                                             engine::ExecutionContext& context) {
    std::lock_guard lock(mutex_);
    auto it = slots_.find(name);
    if (it == slots_.end() || !it->second.ready || it->second.model.get() != model) {
        // Not this cache's model (reloaded meanwhile): plans are not kept.
        auto fresh = model->make_plans(backend, context);
        plan_misses_ += fresh ? 1 : 0;
        return fresh;
    }
    PlanEntry& entry = it->second.plans[&context];
    if (entry.plans) {
        ++plan_hits_;
        return entry.plans;
    }
    entry.plans = model->make_plans(backend, context);
    if (!entry.plans) {  // the task keeps none
        it->second.plans.erase(&context);
        return nullptr;
    }
    ++plan_misses_;
    return entry.plans;
}

void ModelCache::account_plans(const std::string& name,
                               const engine::ExecutionContext& context,
                               int64_t grown,
                               size_t max_bytes) {
    std::unique_lock lock(mutex_);
    auto it = slots_.find(name);
    if (it == slots_.end())
        return;
    auto entry = it->second.plans.find(&context);
    if (entry == it->second.plans.end())
        return;
    const int64_t bytes = static_cast<int64_t>(entry->second.bytes) + grown;
    if (bytes > static_cast<int64_t>(max_bytes)) {
        // The calling worker owns `context`: its copy is the last owner now, let go of on
        // its own thread.
        it->second.plans.erase(entry);
        return;
    }
    entry->second.bytes = static_cast<size_t>(std::max<int64_t>(0, bytes));
    const bool retired = evict_over_budget(name);
    lock.unlock();
    if (retired)
        notify_retired();
}

uint64_t ModelCache::plans_released(const engine::ExecutionContext& context) const {
    std::lock_guard lock(mutex_);
    const auto it = released_.find(&context);
    return it == released_.end() ? 0 : it->second;
}

bool ModelCache::has_retired(const engine::ExecutionContext& context) const {
    std::lock_guard lock(mutex_);
    const auto it = retired_.find(&context);
    return it != retired_.end() && !it->second.empty();
}

void ModelCache::release_retired(const engine::ExecutionContext& context) {
    std::vector<RetiredPlan> plans;
    {
        std::lock_guard lock(mutex_);
        const auto it = retired_.find(&context);
        if (it == retired_.end())
            return;
        plans = std::move(it->second);
        retired_.erase(it);
        for (const RetiredPlan& plan : plans)
            released_[&context] += plan.bytes;
    }
    // Outside the lock (a CUDA plan synchronises its stream when destroyed); plans go before
    // the model they refer to (RetiredPlan's member order).
    plans.clear();
}

void ModelCache::set_retired_listener(std::function<void()> listener) {
    std::lock_guard lock(mutex_);
    retired_listener_ = std::move(listener);
}

void ModelCache::notify_retired() const {
    std::function<void()> listener;
    {
        std::lock_guard lock(mutex_);
        listener = retired_listener_;
    }
    if (listener)
        listener();
}

void ModelCache::drop_plans(const engine::ExecutionContext& context) {
    std::vector<std::shared_ptr<TaskPlans>> cached;
    std::vector<RetiredPlan> retired;
    {
        std::lock_guard lock(mutex_);
        for (auto& [name, slot] : slots_) {
            const auto it = slot.plans.find(&context);
            if (it == slot.plans.end())
                continue;
            cached.push_back(std::move(it->second.plans));
            slot.plans.erase(it);
        }
        const auto it = retired_.find(&context);
        if (it != retired_.end()) {
            retired = std::move(it->second);
            retired_.erase(it);
        }
        released_.erase(&context);
    }
    // Destroyed here, on the calling thread, outside the lock: the cached plans' models
    // are held by their slots, the retired ones' by their entries.
    cached.clear();
    retired.clear();
}

uint64_t ModelCache::plan_hits() const {
    std::lock_guard lock(mutex_);
    return plan_hits_;
}

uint64_t ModelCache::plan_misses() const {
    std::lock_guard lock(mutex_);
    return plan_misses_;
}

bool ModelCache::evict_over_budget(const std::string& keep) {
    bool retired = false;
    size_t total = 0;
    for (const auto& [name, slot] : slots_)
        total += slot.bytes + slot.plan_bytes();
    while (total > budget_bytes_) {
        auto victim = slots_.end();
        for (auto it = slots_.begin(); it != slots_.end(); ++it) {
            // use_count 1: only the cache's future holds the model, no job uses it.
            if (it->first == keep || !it->second.ready || it->second.model.get().use_count() > 1)
                continue;
            if (victim == slots_.end() || it->second.last_used < victim->second.last_used)
                victim = it;
        }
        if (victim == slots_.end())
            return retired;
        total -= victim->second.bytes + victim->second.plan_bytes();
        // Never destroyed here: the calling thread may be any worker's (or a submit's) while
        // the plans' own worker is capturing or running on its stream. Each plan moves, with
        // the model it refers to, to its context's list, released by that context's worker.
        const auto model = victim->second.model.get();
        for (auto& [context, entry] : victim->second.plans) {
            if (!entry.plans)
                continue;
            retired_[context].push_back(RetiredPlan{model, std::move(entry.plans), entry.bytes});
            retired = true;
        }
        slots_.erase(victim);
    }
    return retired;
}

std::vector<CachedModel> ModelCache::loaded() const {
    std::lock_guard lock(mutex_);
    std::vector<CachedModel> out;
    for (const auto& [name, slot] : slots_) {
        if (slot.ready)
            out.push_back(CachedModel{name, slot.bytes, slot.plan_bytes(), slot.plans.size()});
    }
    return out;
}

}  // namespace kiln::scheduler
