// One block of a MemoryPool held for a scope or an object's life (RAII): released to its pool
// on destruction, reset or move-assignment. Host and device pools hand out the same kind of
// block; only the pool behind the MemoryPool interface differs.
#pragma once

#include <cstddef>

#include "engine/backend.h"

namespace kiln::engine {

class PoolBlock {
  public:
    PoolBlock() = default;
    // A block of `bytes` from `pool` (none for 0 bytes); the pool's allocate may throw
    // core::Error(OUT_OF_MEMORY).
    PoolBlock(MemoryPool& pool, size_t bytes)
        : pool_(&pool), bytes_(bytes), ptr_(bytes ? pool.allocate(bytes) : nullptr) {}
    ~PoolBlock() { reset(); }
    PoolBlock(PoolBlock&& o) noexcept : pool_(o.pool_), bytes_(o.bytes_), ptr_(o.ptr_) {
        o.ptr_ = nullptr;
    }
    PoolBlock& operator=(PoolBlock&& o) noexcept {
        if (this != &o) {
            reset();
            pool_ = o.pool_;
            bytes_ = o.bytes_;
            ptr_ = o.ptr_;
            o.ptr_ = nullptr;
        }
        return *this;
    }
    PoolBlock(const PoolBlock&) = delete;
    PoolBlock& operator=(const PoolBlock&) = delete;

    void reset() {
        if (ptr_ && pool_)
            pool_->release(ptr_, bytes_);
        ptr_ = nullptr;
    }
    void* get() const { return ptr_; }
    size_t size() const { return bytes_; }

  private:
    MemoryPool* pool_ = nullptr;
    size_t bytes_ = 0;
    void* ptr_ = nullptr;
};

}  // namespace kiln::engine
