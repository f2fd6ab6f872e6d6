// Per-output work of the resampling kernels (resample.cu), host-device: one output pixel and
// a chunk of V channels (V = 8 where both views allow 128-bit access, else 1). The CPU tests
// run this same code. Sampling math: kernels/resample_math.h (shared with the CPU ops).
#pragma once

#include "kernels/half_io.h"
#include "kernels/resample_math.h"
#include "kernels/view_math.h"

namespace kiln::kernels {

// BILINEAR: upsampling by an integer factor; RESIZE_BILINEAR: to the output's size (any).
enum class ResampleMode : int { NEAREST, BILINEAR, BICUBIC, SHUFFLE, UNSHUFFLE, RESIZE_BILINEAR };

struct ResampleParams {
    ViewDesc src_d, dst_d;
    const uint16_t* src;
    uint16_t* dst;
    int factor;
    int chunks_per_pixel;  // dst.c / V
};

template <int V>
KILN_HD inline void nearest_chunk(const ResampleParams& p, int y, int x, int ch) {
    float v[V];
    load_halves<V>(
        p.src + p.src_d.offset(nearest_source(y, p.factor), nearest_source(x, p.factor), ch), v);
    store_halves<V>(p.dst + p.dst_d.offset(y, x, ch), v);
}

// One output chunk from its taps along y and x.
template <int V>
KILN_HD inline void bilinear_chunk_taps(const ResampleParams& p,
                                        int y,
                                        int x,
                                        int ch,
                                        const LinearTaps& ty,
                                        const LinearTaps& tx) {
    float a[V], b[V], c[V], d[V], out[V];
    load_halves<V>(p.src + p.src_d.offset(ty.i0, tx.i0, ch), a);
    load_halves<V>(p.src + p.src_d.offset(ty.i0, tx.i1, ch), b);
    load_halves<V>(p.src + p.src_d.offset(ty.i1, tx.i0, ch), c);
    load_halves<V>(p.src + p.src_d.offset(ty.i1, tx.i1, ch), d);
    KILN_UNROLL
    for (int i = 0; i < V; ++i) {
        const float top = a[i] * (1.0f - tx.w1) + b[i] * tx.w1;
        const float bottom = c[i] * (1.0f - tx.w1) + d[i] * tx.w1;
        out[i] = top * (1.0f - ty.w1) + bottom * ty.w1;
    }
    store_halves<V>(p.dst + p.dst_d.offset(y, x, ch), out);
}

template <int V>
KILN_HD inline void bilinear_chunk(const ResampleParams& p, int y, int x, int ch) {
    bilinear_chunk_taps<V>(p, y, x, ch, linear_taps(y, p.src_d.h, p.factor),
                           linear_taps(x, p.src_d.w, p.factor));
}

template <int V>
KILN_HD inline void resize_bilinear_chunk(const ResampleParams& p, int y, int x, int ch) {
    bilinear_chunk_taps<V>(p, y, x, ch, resize_linear_taps(y, p.src_d.h, p.dst_d.h),
                           resize_linear_taps(x, p.src_d.w, p.dst_d.w));
}

template <int V>
KILN_HD inline void bicubic_chunk(const ResampleParams& p, int y, int x, int ch) {
    const CubicTaps ty = cubic_taps(y, p.src_d.h, p.dst_d.h);
    const CubicTaps tx = cubic_taps(x, p.src_d.w, p.dst_d.w);
    float acc[V];
    KILN_UNROLL
    for (int i = 0; i < V; ++i)
        acc[i] = 0.0f;
    KILN_UNROLL
    for (int i = 0; i < 4; ++i) {
        const int sy = clamp_index(ty.first + i, p.src_d.h);
        float row[V];
        KILN_UNROLL
        for (int k = 0; k < V; ++k)
            row[k] = 0.0f;
        KILN_UNROLL
        for (int j = 0; j < 4; ++j) {
            float s[V];
            load_halves<V>(p.src + p.src_d.offset(sy, clamp_index(tx.first + j, p.src_d.w), ch), s);
            KILN_UNROLL
            for (int k = 0; k < V; ++k)
                row[k] += tx.w[j] * s[k];
        }
        KILN_UNROLL
        for (int k = 0; k < V; ++k)
            acc[k] += ty.w[i] * row[k];
    }
    store_halves<V>(p.dst + p.dst_d.offset(y, x, ch), acc);
}

// Shuffles move halves without conversion.
KILN_HD inline void shuffle_one(const ResampleParams& p, int y, int x, int ch) {
    const int r = p.factor;
    const int sc = shuffle_source_channel(ch, y % r, x % r, r);
    p.dst[p.dst_d.offset(y, x, ch)] = p.src[p.src_d.offset(y / r, x / r, sc)];
}

KILN_HD inline void unshuffle_one(const ResampleParams& p, int y, int x, int oc) {
    const int r = p.factor;
    const UnshuffleSource s = unshuffle_source(oc, r);
    p.dst[p.dst_d.offset(y, x, oc)] = p.src[p.src_d.offset(y * r + s.i, x * r + s.j, s.ch)];
}

// Work item k (of dst pixels x chunks_per_pixel) of mode kMode.
template <int kVec, ResampleMode kMode>
KILN_HD inline void resample_item(const ResampleParams& p, int64_t k) {
    const int64_t pixel = k / p.chunks_per_pixel;
    const int ch = static_cast<int>(k - pixel * p.chunks_per_pixel) * kVec;
    const int y = static_cast<int>(pixel / p.dst_d.w);
    const int x = static_cast<int>(pixel - static_cast<int64_t>(y) * p.dst_d.w);
    if constexpr (kMode == ResampleMode::NEAREST)
        nearest_chunk<kVec>(p, y, x, ch);
    else if constexpr (kMode == ResampleMode::BILINEAR)
        bilinear_chunk<kVec>(p, y, x, ch);
    else if constexpr (kMode == ResampleMode::BICUBIC)
        bicubic_chunk<kVec>(p, y, x, ch);
    else if constexpr (kMode == ResampleMode::RESIZE_BILINEAR)
        resize_bilinear_chunk<kVec>(p, y, x, ch);
    else if constexpr (kMode == ResampleMode::SHUFFLE)
        shuffle_one(p, y, x, ch);
    else
        unshuffle_one(p, y, x, ch);
}

// Whether mode kMode runs 8-wide on these views.
template <ResampleMode kMode>
inline bool resample_vectorized(const DeviceView& src, const DeviceView& dst) {
    return kMode != ResampleMode::SHUFFLE && kMode != ResampleMode::UNSHUFFLE &&
           view_vectorizable(src.desc, reinterpret_cast<uintptr_t>(src.data), kHalfVector, false) &&
           view_vectorizable(dst.desc, reinterpret_cast<uintptr_t>(dst.data), kHalfVector, false);
}

inline ResampleParams make_resample_params(const DeviceView& src,
                                           const DeviceView& dst,
                                           int factor,
                                           bool vector) {
    ResampleParams p{};
    p.src_d = src.desc;
    p.dst_d = dst.desc;
    p.src = src.data;
    p.dst = dst.data;
    p.factor = factor;
    p.chunks_per_pixel = vector ? dst.desc.c / kHalfVector : dst.desc.c;
    return p;
}

// The kernel's work on one host thread.
template <ResampleMode kMode>
inline void resample_host(const DeviceView& src, const DeviceView& dst, int factor) {
    const bool vector = resample_vectorized<kMode>(src, dst);
    const ResampleParams p = make_resample_params(src, dst, factor, vector);
    const int64_t work = dst.desc.pixels() * p.chunks_per_pixel;
    for (int64_t k = 0; k < work; ++k) {
        if constexpr (kMode != ResampleMode::SHUFFLE && kMode != ResampleMode::UNSHUFFLE) {
            if (vector) {
                resample_item<kHalfVector, kMode>(p, k);
                continue;
            }
        }
        resample_item<1, kMode>(p, k);
    }
}

}  // namespace kiln::kernels
