#include "engine/cuda/device_pool.h"

#include <cstdint>
#include <string>

#include "engine/core/error.h"
#include "kernels/cuda_check.h"

namespace kiln::engine::cuda {

DevicePool::DevicePool(int device, cudaStream_t stream) : stream_(stream) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    KILN_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
    // Keep freed memory cached in the pool instead of returning it at each synchronisation.
    uint64_t threshold = UINT64_MAX;
    KILN_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold));
}

DevicePool::~DevicePool() {
    if (pool_) {
        cudaStreamSynchronize(stream_);
        cudaMemPoolDestroy(pool_);
    }
}

void* DevicePool::allocate(size_t bytes) {
    void* ptr = nullptr;
    const cudaError_t err = cudaMallocFromPoolAsync(&ptr, bytes, pool_, stream_);
    if (err != cudaSuccess) {
        cudaGetLastError();
        throw Error(ErrorCode::OUT_OF_MEMORY, "device allocation of " + std::to_string(bytes) +
                                                  " bytes failed (" + cudaGetErrorString(err) +
                                                  ", " + std::to_string(in_use_.load()) +
                                                  " bytes in use by this context)");
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
        throw Error(ErrorCode::OUT_OF_MEMORY, "pinned host allocation of " + std::to_string(bytes) +
                                                  " bytes failed (" + cudaGetErrorString(err) +
                                                  ")");
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
