#include "scheduler/model_cache.h"

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

void ModelCache::evict_over_budget(const std::string& keep) {
    size_t total = 0;
    for (const auto& [name, slot] : slots_)
        total += slot.bytes;
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
        total -= victim->second.bytes;
        slots_.erase(victim);
    }
}

std::vector<CachedModel> ModelCache::loaded() const {
    std::lock_guard lock(mutex_);
    std::vector<CachedModel> out;
    for (const auto& [name, slot] : slots_) {
        if (slot.ready)
            out.push_back(CachedModel{name, slot.bytes});
    }
    return out;
}

}  // namespace kiln::scheduler
