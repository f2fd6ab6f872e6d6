#include "engine/cuda/device_pool.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/cuda/pool_policy.h"
#include "kernels/cuda_check.h"

namespace kiln::engine::cuda {

namespace {

// Every live pool, so that one under pressure can release the others' cached blocks.
std::mutex& pools_mutex() {
    static std::mutex m;
    return m;
}
std::vector<DevicePool*>& pools() {
    static std::vector<DevicePool*> list;
    return list;
}

}  // namespace

DevicePool::DevicePool(int device, cudaStream_t stream, size_t keep_bytes)
    : device_(device), stream_(stream) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    KILN_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
    // A worker keeps freed memory cached instead of returning it at each synchronisation
    // (UINT64_MAX); admission keeps none.
    uint64_t threshold = pool_release_threshold(keep_bytes);
    KILN_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold));
    std::lock_guard lock(pools_mutex());
    pools().push_back(this);
}

DevicePool::~DevicePool() {
    {
        std::lock_guard lock(pools_mutex());
        auto& list = pools();
        list.erase(std::remove(list.begin(), list.end(), this), list.end());
    }
    if (pool_) {
        cudaStreamSynchronize(stream_);
        cudaMemPoolDestroy(pool_);
    }
}

cudaError_t DevicePool::try_allocate(void** ptr, size_t bytes) {
    const cudaError_t err = cudaMallocFromPoolAsync(ptr, bytes, pool_, stream_);
    if (err != cudaSuccess)
        cudaGetLastError();  // clear it: the next attempt or the core::Error reports it
    return err;
}

void DevicePool::trim(bool synchronise) {
    if (synchronise && cudaStreamSynchronize(stream_) != cudaSuccess)
        cudaGetLastError();
    if (cudaMemPoolTrimTo(pool_, kPoolTrimKeepBytes) != cudaSuccess)
        cudaGetLastError();
}

size_t DevicePool::others_cached() const {
    std::lock_guard lock(pools_mutex());
    size_t total = 0;
    for (const DevicePool* p : pools()) {
        if (p != this && p->device_ == device_)
            total += p->bytes_cached();
    }
    return total;
}

void DevicePool::trim_others() {
    // Trimming releases only blocks no stream still uses: safe from this thread while the
    // other pools' workers run (their streams are not synchronised).
    std::lock_guard lock(pools_mutex());
    for (DevicePool* p : pools()) {
        if (p != this && p->device_ == device_)
            p->trim(false);
    }
}

void* DevicePool::allocate(size_t bytes) {
    void* ptr = nullptr;
    cudaError_t err = try_allocate(&ptr, bytes);
    PoolOomDone done;
    while (err == cudaErrorMemoryAllocation) {
        PoolPressure pressure;
        pressure.request = bytes;
        pressure.own_cached = bytes_cached();
        pressure.others_cached = others_cached();
        size_t free_bytes = 0, total_bytes = 0;
        if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
            pressure.device_total = total_bytes;
        else
            cudaGetLastError();
        cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
        if (cudaStreamIsCapturing(stream_, &capture) != cudaSuccess)
            cudaGetLastError();
        pressure.capturing = capture != cudaStreamCaptureStatusNone;
        const PoolOomStep step = pool_oom_next(done, pressure);
        if (step == PoolOomStep::GIVE_UP)
            break;
        if (step == PoolOomStep::TRIM_OWN) {
            trim(true);
            done.own_trimmed = true;
        } else {
            trim_others();
            done.device_trimmed = true;
        }
        err = try_allocate(&ptr, bytes);
    }
    if (err != cudaSuccess) {
        const std::string tried =
            done.own_trimmed || done.device_trimmed ? ", after releasing cached blocks" : "";
        throw core::Error(core::ErrorCode::OUT_OF_MEMORY,
                          "device allocation of " + std::to_string(bytes) + " bytes failed (" +
                              cudaGetErrorString(err) + tried + ", " +
                              std::to_string(in_use_.load()) + " bytes in use by this context)");
    }
    const size_t now = in_use_ += bytes;
    size_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return ptr;
}

void DevicePool::release(void* ptr, size_t bytes) {
    // Errors here cannot be reported (destructors): the memory stays with the pool.
    if (cudaFreeAsync(ptr, stream_) != cudaSuccess)
        cudaGetLastError();
    in_use_ -= bytes;
}

size_t DevicePool::bytes_cached() const {
    uint64_t reserved = 0;
    if (cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved) !=
        cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    const size_t used = in_use_.load();
    return reserved > used ? static_cast<size_t>(reserved) - used : 0;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes == 0)
        return;
    const cudaError_t err = cudaHostAlloc(&ptr_, bytes, cudaHostAllocDefault);
    if (err != cudaSuccess) {
        cudaGetLastError();
        ptr_ = nullptr;
        throw core::Error(core::ErrorCode::OUT_OF_MEMORY,
                          "pinned host allocation of " + std::to_string(bytes) + " bytes failed (" +
                              cudaGetErrorString(err) + ")");
    }
}

PinnedBuffer::~PinnedBuffer() {
    release();
}

void PinnedBuffer::release() {
    if (ptr_)
        cudaFreeHost(ptr_);
    ptr_ = nullptr;
}

}  // namespace kiln::engine::cuda
