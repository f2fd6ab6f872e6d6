// Device memory of one execution context: a stream-ordered pool (cudaMemPool_t) that caches
// freed blocks for the context's stream, and pinned host staging buffers. An allocation that
// finds the device full first releases cached blocks (this pool's, then every pool's of the
// device: engine/cuda/pool_policy.h decides) and retries; when that fails it throws
// core::Error(OUT_OF_MEMORY) so the scheduler can retry with smaller tiles.
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>

#include "engine/backend.h"

namespace kiln::engine::cuda {

class DevicePool final : public MemoryPool {
  public:
    // `keep_bytes`: the pool's release threshold (ContextOptions::pool_keep_bytes).
    DevicePool(int device, cudaStream_t stream, size_t keep_bytes);
    ~DevicePool() override;
    DevicePool(const DevicePool&) = delete;
    DevicePool& operator=(const DevicePool&) = delete;

    // Stream-ordered on the context's stream: usable by work enqueued after the call.
    void* allocate(size_t bytes) override;
    void release(void* ptr, size_t bytes) override;
    size_t bytes_in_use() const override { return in_use_.load(); }
    size_t bytes_cached() const override;
    size_t peak_bytes() const override { return peak_.load(); }

    // Returns every cached block not in use to the device (cudaMemPoolTrimTo). With
    // `synchronise`, first waits for the stream so blocks freed on it count as unused; only
    // the thread that owns the stream may ask for that.
    void trim(bool synchronise);

  private:
    cudaError_t try_allocate(void** ptr, size_t bytes);
    // Cached (reserved, not in use) bytes of the device's other pools, and their trim.
    size_t others_cached() const;
    void trim_others();

    int device_;
    cudaMemPool_t pool_ = nullptr;
    cudaStream_t stream_;
    std::atomic<size_t> in_use_{0};
    std::atomic<size_t> peak_{0};
};

// Page-locked host memory for async copies.
class PinnedBuffer {
  public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(size_t bytes);
    ~PinnedBuffer();
    PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
    PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
        if (this != &o) {
            release();
            ptr_ = o.ptr_;
            bytes_ = o.bytes_;
            o.ptr_ = nullptr;
        }
        return *this;
    }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;

    void* get() const { return ptr_; }
    size_t size() const { return bytes_; }

  private:
    void release();

    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

}  // namespace kiln::engine::cuda
