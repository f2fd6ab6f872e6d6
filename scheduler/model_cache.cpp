#include "scheduler/model_cache.h"

#include <algorithm>

namespace kiln::scheduler {

ModelCache::ModelCache(weights::ModelRegistry& registry, size_t budget_bytes)
    : registry_(registry), budget_bytes_(budget_bytes) {}

std::shared_ptr<const engine::Model> ModelCache::acquire(const std::string& name) {
    std::unique_lock lock(mutex_);
    auto it = slots_.find(name);
    if (it != slots_.end()) {
        it->second.last_used = ++clock_;
        auto future = it->second.model;
        evict_over_budget(name);  // models released since the last load may go now
        lock.unlock();
        return future.get();  // rethrows the loader's error
    }
    std::promise<std::shared_ptr<const engine::Model>> promise;
    Slot& slot = slots_[name];
    slot.model = promise.get_future().share();
    slot.last_used = ++clock_;
    lock.unlock();

    std::shared_ptr<const engine::Model> model;
    try {
        model = engine::Model::create(registry_.load(name));
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
        loaded_it->second.bytes = static_cast<size_t>(model->parameter_count()) * sizeof(float);
        loaded_it->second.ready = true;
    }
    evict_over_budget(name);
    return model;
}

size_t ModelCache::Slot::plan_bytes() const {
    size_t total = 0;
    for (const auto& [context, entry] : plans)
        total += entry.bytes;
    return total;
}

std::shared_ptr<engine::Upscaler> ModelCache::upscaler(
    const std::string& name,
    const std::shared_ptr<const engine::Model>& model,
    engine::Backend& backend,
    engine::ExecutionContext& context) {
    std::lock_guard lock(mutex_);
    auto it = slots_.find(name);
    if (it == slots_.end() || !it->second.ready || it->second.model.get() != model) {
        ++plan_misses_;  // not this cache's model (reloaded meanwhile): plans are not kept
        return std::make_shared<engine::Upscaler>(*model, backend, context);
    }
    PlanEntry& entry = it->second.plans[&context];
    if (entry.upscaler) {
        ++plan_hits_;
    } else {
        ++plan_misses_;
        entry.upscaler = std::make_shared<engine::Upscaler>(*model, backend, context);
    }
    return entry.upscaler;
}

void ModelCache::account_plans(const std::string& name,
                               const engine::ExecutionContext& context,
                               int64_t grown,
                               size_t max_bytes) {
    std::lock_guard lock(mutex_);
    auto it = slots_.find(name);
    if (it == slots_.end())
        return;
    auto entry = it->second.plans.find(&context);
    if (entry == it->second.plans.end())
        return;
    const int64_t bytes = static_cast<int64_t>(entry->second.bytes) + grown;
    if (bytes > static_cast<int64_t>(max_bytes)) {
        it->second.plans.erase(entry);  // the worker's copy is the last owner now
        return;
    }
    entry->second.bytes = static_cast<size_t>(std::max<int64_t>(0, bytes));
    evict_over_budget(name);
}

uint64_t ModelCache::plans_released(const engine::ExecutionContext& context) const {
    std::lock_guard lock(mutex_);
    const auto it = released_.find(&context);
    return it == released_.end() ? 0 : it->second;
}

void ModelCache::drop_plans(const engine::ExecutionContext& context) {
    std::lock_guard lock(mutex_);
    for (auto& [name, slot] : slots_)
        slot.plans.erase(&context);
    released_.erase(&context);
}

uint64_t ModelCache::plan_hits() const {
    std::lock_guard lock(mutex_);
    return plan_hits_;
}

uint64_t ModelCache::plan_misses() const {
    std::lock_guard lock(mutex_);
    return plan_misses_;
}

void ModelCache::evict_over_budget(const std::string& keep) {
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
            return;
        total -= victim->second.bytes + victim->second.plan_bytes();
        for (const auto& [context, entry] : victim->second.plans)
            released_[context] += entry.bytes;
        slots_.erase(victim);  // its plans first, then the weights (Slot's member order)
    }
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
