#include "engine/cpu/host_pool.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <string>

#include "core/error.h"

namespace kiln::engine::cpu {

HostPool::~HostPool() {
    for (auto& [bytes, ptr] : free_)
        std::free(ptr);
}

void* HostPool::allocate(size_t bytes) {
    std::lock_guard lock(mutex_);
    auto it = free_.find(bytes);
    if (it != free_.end()) {
        void* ptr = it->second;
        free_.erase(it);
        cached_ -= bytes;
        in_use_ += bytes;
        peak_ = std::max(peak_, in_use_);
        return ptr;
    }
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* ptr = std::aligned_alloc(64, rounded);
    if (!ptr) {
        throw core::Error(core::ErrorCode::OUT_OF_MEMORY,
                          "host allocation of " + std::to_string(bytes) + " bytes failed");
    }
    in_use_ += bytes;
    peak_ = std::max(peak_, in_use_);
    return ptr;
}

void HostPool::release(void* ptr, size_t bytes) {
    if (!ptr)
        return;
    std::lock_guard lock(mutex_);
    in_use_ -= bytes;
    if (cached_ + bytes > max_cached_) {
        std::free(ptr);
        return;
    }
    free_.emplace(bytes, ptr);
    cached_ += bytes;
}

size_t HostPool::bytes_in_use() const {
    std::lock_guard lock(mutex_);
    return in_use_;
}

size_t HostPool::bytes_cached() const {
    std::lock_guard lock(mutex_);
    return cached_;
}

size_t HostPool::peak_bytes() const {
    std::lock_guard lock(mutex_);
    return peak_;
}

}  // namespace kiln::engine::cpu
