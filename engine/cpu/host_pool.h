// Host memory pool of one CPU execution context: 64-byte aligned blocks, cached by exact
// size after release so rebuilding a plan of the same shape reuses them.
#pragma once

#include <map>
#include <mutex>

#include "engine/backend.h"

namespace kiln::engine::cpu {

class HostPool final : public MemoryPool {
  public:
    explicit HostPool(size_t max_cached_bytes = size_t{1} << 30) : max_cached_(max_cached_bytes) {}
    ~HostPool() override;
    HostPool(const HostPool&) = delete;
    HostPool& operator=(const HostPool&) = delete;

    void* allocate(size_t bytes) override;
    void release(void* ptr, size_t bytes) override;
    size_t bytes_in_use() const override;
    size_t bytes_cached() const override;
    size_t peak_bytes() const override;

  private:
    mutable std::mutex mutex_;
    std::multimap<size_t, void*> free_;
    size_t in_use_ = 0;
    size_t cached_ = 0;
    size_t peak_ = 0;
    size_t max_cached_;
};

}  // namespace kiln::engine::cpu
