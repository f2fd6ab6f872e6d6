// Pooling as host-device code. Global average pooling ([h, w, c] -> [1, 1, c] channel means;
// squeeze-excitation blocks): the split of the work over blocks, each thread's sum, the block's and
// the final combination, all in fp32 and in one fixed order, so the kernel (kernels/pool.cu) is
// deterministic (no atomics: a replayed CUDA graph gives the same bits) and the CPU tests
// (tests/kernels) reproduce it exactly through the same walk.
//
// A block is kPoolLanes x kPoolRows threads: lane = channel within a tile of 32 channels
// (consecutive lanes read consecutive channels of a pixel), row = pixel phase. Blocks are
// (channel tile, split): split s sums pixels [s * pps, (s + 1) * pps) (pps = pixels per split).
// Thread (lane, row) sums pixels p0 + row, p0 + row + kPoolRows, ...; the block adds its rows
// in order 0..7 into partials[s][ch]; the finish adds the splits in order and divides by the
// pixel count. With one split the block writes the mean itself (one launch).
//
// Max pooling (MAX_POOL: OmniSR's ESA, 7 x 7 windows at stride 3, no padding) is at the end:
// one output (pixel, chunk of V channels) per work item, as the resampling kernels.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/half_io.h"
#include "kernels/view_math.h"

namespace kiln::kernels {

inline constexpr int kPoolLanes = 32;
inline constexpr int kPoolRows = 8;                     // block = 256 threads
inline constexpr int kPoolTargetBlocks = 264;           // 2 per SM on an H100
inline constexpr int64_t kPoolMinPixelsPerSplit = 256;  // 32 per thread row
inline constexpr int kPoolMaxSplits = 128;

struct PoolSplit {
    int channel_tiles = 0;  // ceil(c / kPoolLanes)
    int splits = 1;
    int64_t pixels_per_split = 0;
};

// Enough (tile, split) blocks to fill the device, each over at least kPoolMinPixelsPerSplit
// pixels (or all of them), at most kPoolMaxSplits splits.
KILN_HD inline PoolSplit pool_split(int64_t pixels, int channels) {
    PoolSplit s;
    s.channel_tiles = static_cast<int>(ceil_div(channels, kPoolLanes));
    int64_t want = s.channel_tiles > 0 ? ceil_div(kPoolTargetBlocks, s.channel_tiles) : 1;
    const int64_t by_size = pixels / kPoolMinPixelsPerSplit;
    if (want > by_size)
        want = by_size;
    if (want > kPoolMaxSplits)
        want = kPoolMaxSplits;
    if (want < 1)
        want = 1;
    s.pixels_per_split = pixels > 0 ? ceil_div(pixels, want) : 0;
    s.splits = pixels > 0 ? static_cast<int>(ceil_div(pixels, s.pixels_per_split)) : 1;
    return s;
}

// fp32 partial sums [splits][c] the kernel needs beyond its output (0 with one split).
inline size_t global_avg_pool_scratch_bytes(const ViewDesc& x) {
    const PoolSplit s = pool_split(x.pixels(), x.c);
    return s.splits > 1 ? static_cast<size_t>(s.splits) * static_cast<size_t>(x.c) * sizeof(float)
                        : 0;
}

struct PoolParams {
    ViewDesc src_d, dst_d;
    const uint16_t* src;
    uint16_t* dst;    // [1, 1, c] view
    float* partials;  // [splits][c] (unused with one split)
    PoolSplit split;
    int64_t pixels;
};

// Thread (lane, row) of block (tile, s): channel tile * kPoolLanes + lane over its pixels of
// split s. 0 for a lane past the last channel.
KILN_HD inline float pool_thread_sum(const PoolParams& p, int tile, int s, int lane, int row) {
    const int ch = tile * kPoolLanes + lane;
    if (ch >= p.src_d.c)
        return 0.0f;
    const int64_t p0 = s * p.split.pixels_per_split;
    int64_t p1 = p0 + p.split.pixels_per_split;
    if (p1 > p.pixels)
        p1 = p.pixels;
    const uint16_t* x = p.src + p.src_d.pixel_offset(0, ch);
    const int64_t stride = p.src_d.c_total;
    float acc = 0.0f;
    for (int64_t px = p0 + row; px < p1; px += kPoolRows) {
        float v[1];
        load_halves<1>(x + px * stride, v);
        acc += v[0];
    }
    return acc;
}

// The block's sum of one lane: its kPoolRows thread sums added in row order.
KILN_HD inline float pool_combine_rows(const float* rows, int row_stride) {
    float acc = 0.0f;
    for (int r = 0; r < kPoolRows; ++r)
        acc += rows[r * row_stride];
    return acc;
}

// The mean of channel ch from the split sums (one value per split, `stride` floats apart),
// added in split order.
KILN_HD inline float pool_finish(const float* sums, int64_t stride, int splits, int64_t pixels) {
    float acc = 0.0f;
    for (int s = 0; s < splits; ++s)
        acc += sums[s * stride];
    return acc / static_cast<float>(pixels);
}

KILN_HD inline void pool_store(const PoolParams& p, int ch, float mean) {
    const float v[1] = {mean};
    store_halves<1>(p.dst + p.dst_d.pixel_offset(0, ch), v);
}

// The block's result for channel ch: the mean itself (one split) or its partial sum.
KILN_HD inline void pool_block_result(const PoolParams& p, int s, int ch, float block_sum) {
    if (p.split.splits == 1)
        pool_store(p, ch, pool_finish(&block_sum, 1, 1, p.pixels));
    else
        p.partials[static_cast<int64_t>(s) * p.src_d.c + ch] = block_sum;
}

// The finish of channel ch (more than one split).
KILN_HD inline void pool_finish_channel(const PoolParams& p, int ch) {
    pool_store(p, ch, pool_finish(p.partials + ch, p.src_d.c, p.split.splits, p.pixels));
}

// src [h, w, c] (any channel view), dst [1, 1, c]; partials: global_avg_pool_scratch_bytes.
inline PoolParams make_pool_params(const DeviceView& src, const DeviceView& dst, void* partials) {
    PoolParams p{};
    p.src_d = src.desc;
    p.dst_d = dst.desc;
    p.src = src.data;
    p.dst = dst.data;
    p.partials = static_cast<float*>(partials);
    p.pixels = src.desc.pixels();
    p.split = pool_split(p.pixels, src.desc.c);
    return p;
}

// The kernels' walk on one host thread: every block's threads, its row combination, then the
// finish; the same sums in the same order as on the device.
inline void global_avg_pool_host(const PoolParams& p) {
    float rows[kPoolRows * kPoolLanes];
    for (int s = 0; s < p.split.splits; ++s)
        for (int tile = 0; tile < p.split.channel_tiles; ++tile) {
            for (int r = 0; r < kPoolRows; ++r)
                for (int lane = 0; lane < kPoolLanes; ++lane)
                    rows[r * kPoolLanes + lane] = pool_thread_sum(p, tile, s, lane, r);
            for (int lane = 0; lane < kPoolLanes; ++lane) {
                const int ch = tile * kPoolLanes + lane;
                if (ch < p.src_d.c)
                    pool_block_result(p, s, ch, pool_combine_rows(rows + lane, kPoolLanes));
            }
        }
    if (p.split.splits > 1) {
        for (int ch = 0; ch < p.src_d.c; ++ch)
            pool_finish_channel(p, ch);
    }
}

// Max pooling's windows along an axis of `in` pixels: floor((in - kernel) / stride) + 1 (0
// when in < kernel); output index o reads input [o * stride, o * stride + kernel).
KILN_HD inline int max_pool_output_size(int in, int kernel, int stride) {
    return in < kernel ? 0 : (in - kernel) / stride + 1;
}

KILN_HD inline int max_pool_window_start(int o, int stride) {
    return o * stride;
}

struct MaxPoolParams {
    ViewDesc src_d, dst_d;
    const uint16_t* src;
    uint16_t* dst;
    int kernel, stride;
    int chunks_per_pixel;  // dst.c / V
};

// Work item k (of dst pixels x chunks_per_pixel): the maximum of each of V channels over the
// output pixel's window. Comparisons as std::max(m, v) (a NaN input is skipped unless first);
// the maximum of fp16 values is one of them, so the store is exact.
template <int V>
KILN_HD inline void max_pool_item(const MaxPoolParams& p, int64_t k) {
    const int64_t pixel = k / p.chunks_per_pixel;
    const int ch = static_cast<int>(k - pixel * p.chunks_per_pixel) * V;
    const int y = static_cast<int>(pixel / p.dst_d.w);
    const int x = static_cast<int>(pixel - static_cast<int64_t>(y) * p.dst_d.w);
    const int y0 = max_pool_window_start(y, p.stride), x0 = max_pool_window_start(x, p.stride);
    float m[V];
    KILN_UNROLL
    for (int i = 0; i < V; ++i)
        m[i] = -INFINITY;
    for (int ky = 0; ky < p.kernel; ++ky) {
        for (int kx = 0; kx < p.kernel; ++kx) {
            float v[V];
            load_halves<V>(p.src + p.src_d.offset(y0 + ky, x0 + kx, ch), v);
            KILN_UNROLL
            for (int i = 0; i < V; ++i)
                m[i] = m[i] < v[i] ? v[i] : m[i];
        }
    }
    store_halves<V>(p.dst + p.dst_d.offset(y, x, ch), m);
}

// Whether both views allow 8-wide (128-bit) access per pixel.
inline bool max_pool_vectorized(const DeviceView& src, const DeviceView& dst) {
    return view_vectorizable(src.desc, reinterpret_cast<uintptr_t>(src.data), kHalfVector, false) &&
           view_vectorizable(dst.desc, reinterpret_cast<uintptr_t>(dst.data), kHalfVector, false);
}

inline MaxPoolParams make_max_pool_params(const DeviceView& src,
                                          const DeviceView& dst,
                                          int kernel,
                                          int stride,
                                          bool vector) {
    MaxPoolParams p{};
    p.src_d = src.desc;
    p.dst_d = dst.desc;
    p.src = src.data;
    p.dst = dst.data;
    p.kernel = kernel;
    p.stride = stride;
    p.chunks_per_pixel = vector ? dst.desc.c / kHalfVector : dst.desc.c;
    return p;
}

// The kernel's work on one host thread.
inline void max_pool_host(const DeviceView& src, const DeviceView& dst, int kernel, int stride) {
    const bool vector = max_pool_vectorized(src, dst);
    const MaxPoolParams p = make_max_pool_params(src, dst, kernel, stride, vector);
    const int64_t work = dst.desc.pixels() * p.chunks_per_pixel;
    for (int64_t k = 0; k < work; ++k) {
        if (vector)
            max_pool_item<kHalfVector>(p, k);
        else
            max_pool_item<1>(p, k);
    }
}

}  // namespace kiln::kernels
