// Loaded models shared by every worker: one load for concurrent first users, least recently
// used evicted when over the memory budget, never while a job holds it.
#pragma once

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/models/model.h"
#include "weights/registry.h"

namespace kiln::scheduler {

struct CachedModel {
    std::string name;
    size_t memory_bytes = 0;
};

class ModelCache {
  public:
    ModelCache(weights::ModelRegistry& registry, size_t budget_bytes);

    // Loads on first use (blocking the callers that asked meanwhile). Throws kiln::Error
    // (NOT_FOUND for an unknown name). The model stays cached at least while held.
    std::shared_ptr<const engine::Model> acquire(const std::string& name);
    std::vector<CachedModel> loaded() const;

  private:
    struct Slot {
        std::shared_future<std::shared_ptr<const engine::Model>> model;
        size_t bytes = 0;
        uint64_t last_used = 0;
        bool ready = false;
    };

    void evict_over_budget(const std::string& keep);

    weights::ModelRegistry& registry_;
    size_t budget_bytes_;
    mutable std::mutex mutex_;
    std::map<std::string, Slot> slots_;
    uint64_t clock_ = 0;
};

}  // namespace kiln::scheduler
