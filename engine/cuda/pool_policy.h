// Decisions of the CUDA device memory pool (engine/cuda/device_pool.*), pure C++ so the CPU
// tests cover them: how much freed memory a context's pool keeps cached, and what an
// allocation that failed for lack of device memory does before it gives up (release this
// pool's cached blocks, then every pool's of the device, then report OUT_OF_MEMORY so the
// job can retry with smaller tiles).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::engine::cuda {

// cudaMemPoolAttrReleaseThreshold for a pool that keeps up to `keep_bytes` reserved past a
// synchronisation (ContextOptions::pool_keep_bytes). SIZE_MAX keeps everything (a worker:
// freed plan blocks feed the next plan); 0 returns every free block at each synchronisation
// (the admission context, which never holds a plan).
inline uint64_t pool_release_threshold(size_t keep_bytes) {
    return keep_bytes == SIZE_MAX ? UINT64_MAX : static_cast<uint64_t>(keep_bytes);
}

// cudaMemPoolTrimTo's minBytesToKeep under pressure: every block not in use goes back to the
// device (blocks in use are never released, whatever the figure).
inline constexpr uint64_t kPoolTrimKeepBytes = 0;

enum class PoolOomStep {
    TRIM_OWN,     // synchronise the context's stream, trim its pool, retry
    TRIM_DEVICE,  // trim every other pool of the device (no synchronisation), retry
    GIVE_UP,      // throw core::Error(OUT_OF_MEMORY)
};

struct PoolPressure {
    size_t request = 0;        // bytes the failed allocation asked for
    size_t own_cached = 0;     // this pool's reserved bytes not in use
    size_t others_cached = 0;  // the same, summed over the device's other pools
    size_t device_total = 0;   // the device's memory (0: unknown)
    bool capturing = false;    // the stream is capturing a CUDA graph: it cannot synchronise
};

struct PoolOomDone {
    bool own_trimmed = false;
    bool device_trimmed = false;
};

// The next step after a failed allocation. Each trim happens at most once per allocation,
// so an allocation is tried at most three times.
inline PoolOomStep pool_oom_next(const PoolOomDone& done, const PoolPressure& p) {
    if (p.capturing)
        return PoolOomStep::GIVE_UP;
    if (p.device_total != 0 && p.request > p.device_total)
        return PoolOomStep::GIVE_UP;  // no trim makes room for more than the device has
    if (!done.own_trimmed && p.own_cached > 0)
        return PoolOomStep::TRIM_OWN;
    if (!done.device_trimmed && p.others_cached > 0)
        return PoolOomStep::TRIM_DEVICE;
    return PoolOomStep::GIVE_UP;
}

}  // namespace kiln::engine::cuda
