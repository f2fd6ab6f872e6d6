// Per-chunk work of the elementwise kernels (elementwise.cu), host-device: dst = a * scale + b
// (b possibly broadcast over pixels), without b a copy, dst = a * b (same broadcast), GEGLU
// (dst = a * gelu(gate)) and the crop (a spatial window copied, halves moved unconverted). The
// CPU tests run this same code.
#pragma once

#include "kernels/half_io.h"
#include "kernels/pointwise_math.h"  // gelu
#include "kernels/view_math.h"

namespace kiln::kernels {

struct AddParams {
    VecPlan plan;
    ViewDesc a_d, b_d, dst_d;
    const uint16_t* a;
    const uint16_t* b;  // null: copy
    uint16_t* dst;
    float scale_a;
    bool b_broadcast;  // b is [1, 1, c]: the plan walks per-pixel rows, b's row is pixel 0
};

// Element offset of (row, col) in b: a broadcast b is read at pixel 0 for every row.
KILN_HD inline int64_t add_b_offset(const AddParams& p, int64_t row, int64_t col) {
    return p.b_broadcast ? p.b_d.pixel_offset(0, static_cast<int>(col))
                         : plan_offset(p.b_d, p.plan, row, col);
}

template <int V, bool kHasB>
KILN_HD inline void add_chunk(const AddParams& p, int64_t row, int64_t col) {
    float va[V];
    load_halves<V>(p.a + plan_offset(p.a_d, p.plan, row, col), va);
    if constexpr (kHasB) {
        float vb[V];
        load_halves<V>(p.b + add_b_offset(p, row, col), vb);
        KILN_UNROLL
        for (int i = 0; i < V; ++i)
            va[i] = va[i] * p.scale_a + vb[i];
    }
    store_halves<V>(p.dst + plan_offset(p.dst_d, p.plan, row, col), va);
}

// MUL: dst = a * b (b broadcast as in add_chunk; scale_a is not used).
template <int V>
KILN_HD inline void mul_chunk(const AddParams& p, int64_t row, int64_t col) {
    float va[V], vb[V];
    load_halves<V>(p.a + plan_offset(p.a_d, p.plan, row, col), va);
    load_halves<V>(p.b + add_b_offset(p, row, col), vb);
    KILN_UNROLL
    for (int i = 0; i < V; ++i)
        va[i] = va[i] * vb[i];
    store_halves<V>(p.dst + plan_offset(p.dst_d, p.plan, row, col), va);
}

// GEGLU: dst = a * gelu(b), where a and b are the two channel halves of the op's input
// (same shape as dst).
template <int V>
KILN_HD inline void geglu_chunk(const AddParams& p, int64_t row, int64_t col) {
    float va[V], vb[V];
    load_halves<V>(p.a + plan_offset(p.a_d, p.plan, row, col), va);
    load_halves<V>(p.b + plan_offset(p.b_d, p.plan, row, col), vb);
    KILN_UNROLL
    for (int i = 0; i < V; ++i)
        va[i] = va[i] * gelu(vb[i]);
    store_halves<V>(p.dst + plan_offset(p.dst_d, p.plan, row, col), va);
}

// dst = a * scale_a + b (b.data null: dst = a). b may be a [1, 1, c] view when a is larger:
// it is added to every pixel.
inline AddParams make_add_params(const DeviceView& a,
                                 const DeviceView& b,
                                 const DeviceView& dst,
                                 float scale_a) {
    AddParams p{};
    p.a_d = a.desc;
    p.b_d = b.data ? b.desc : a.desc;
    p.dst_d = dst.desc;
    p.a = a.data;
    p.b = b.data;
    p.dst = dst.data;
    p.scale_a = scale_a;
    p.b_broadcast = b.data && b.desc.pixels() == 1 && a.desc.pixels() != 1;
    const ViewDesc descs[3] = {a.desc, p.b_d, dst.desc};
    const uintptr_t addrs[3] = {reinterpret_cast<uintptr_t>(a.data),
                                reinterpret_cast<uintptr_t>(b.data ? b.data : a.data),
                                reinterpret_cast<uintptr_t>(dst.data)};
    p.plan = plan_vectors(descs, addrs, 3, p.b_broadcast);
    return p;
}

// GEGLU of x [h, w, 2c] into dst [h, w, c]: a = channels [0, c), gate = [c, 2c) of x.
inline AddParams make_geglu_params(const DeviceView& x, const DeviceView& dst) {
    const int c = x.desc.c / 2;
    DeviceView a = x, gate = x;
    a.desc.c = c;
    gate.desc.c = c;
    gate.desc.c_offset = x.desc.c_offset + c;
    return make_add_params(a, gate, dst, 1.0f);
}

inline void mul_host(const AddParams& p) {
    for (int64_t k = 0; k < p.plan.chunks(); ++k) {
        if (p.plan.vec == kHalfVector)
            mul_chunk<kHalfVector>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
        else
            mul_chunk<1>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    }
    for (int t = 0; t < p.plan.tail; ++t)
        mul_chunk<1>(p, 0, p.plan.tail_start() + t);
}

inline void geglu_host(const AddParams& p) {
    for (int64_t k = 0; k < p.plan.chunks(); ++k) {
        if (p.plan.vec == kHalfVector)
            geglu_chunk<kHalfVector>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
        else
            geglu_chunk<1>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    }
    for (int t = 0; t < p.plan.tail; ++t)
        geglu_chunk<1>(p, 0, p.plan.tail_start() + t);
}

template <bool kHasB>
inline void add_host(const AddParams& p) {
    for (int64_t k = 0; k < p.plan.chunks(); ++k) {
        if (p.plan.vec == kHalfVector)
            add_chunk<kHalfVector, kHasB>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
        else
            add_chunk<1, kHasB>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    }
    for (int t = 0; t < p.plan.tail; ++t)
        add_chunk<1, kHasB>(p, 0, p.plan.tail_start() + t);
}

// CROP: dst [h, w, c] = src[top : top + h, left : left + w] (every channel of the views). The
// plan walks dst's pixels as rows (8-wide when both views allow it; a crop is never one flat
// run: src's rows are longer than dst's).
struct CropParams {
    VecPlan plan;
    ViewDesc src_d, dst_d;
    const uint16_t* src;
    uint16_t* dst;
    int top, left;
};

// Element offset in src of dst pixel `row`, channel `col`.
KILN_HD inline int64_t crop_src_offset(const CropParams& p, int64_t row, int64_t col) {
    const int y = static_cast<int>(row / p.dst_d.w);
    const int x = static_cast<int>(row % p.dst_d.w);
    return p.src_d.offset(p.top + y, p.left + x, static_cast<int>(col));
}

template <int V>
KILN_HD inline void crop_chunk(const CropParams& p, int64_t row, int64_t col) {
    copy_halves<V>(p.src + crop_src_offset(p, row, col),
                   p.dst + p.dst_d.pixel_offset(row, static_cast<int>(col)));
}

// The window must lie inside src and the channel counts agree (the graph checks both).
inline CropParams make_crop_params(const DeviceView& src,
                                   const DeviceView& dst,
                                   int top,
                                   int left) {
    CropParams p{};
    p.src_d = src.desc;
    p.dst_d = dst.desc;
    p.src = src.data;
    p.dst = dst.data;
    p.top = top;
    p.left = left;
    // dst first: the plan's rows are its pixels; src takes part in the vector check only.
    const ViewDesc descs[2] = {dst.desc, src.desc};
    const uintptr_t addrs[2] = {reinterpret_cast<uintptr_t>(dst.data),
                                reinterpret_cast<uintptr_t>(src.data)};
    p.plan = plan_vectors(descs, addrs, 2, true);
    return p;
}

inline void crop_host(const CropParams& p) {
    for (int64_t k = 0; k < p.plan.chunks(); ++k) {
        if (p.plan.vec == kHalfVector)
            crop_chunk<kHalfVector>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
        else
            crop_chunk<1>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    }
    for (int t = 0; t < p.plan.tail; ++t)
        crop_chunk<1>(p, 0, p.plan.tail_start() + t);
}

}  // namespace kiln::kernels
