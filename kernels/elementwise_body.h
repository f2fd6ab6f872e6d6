// Per-chunk work of the elementwise kernels (elementwise.cu), host-device: dst = a * scale + b
// or, without b, a copy. The CPU tests run this same code.
#pragma once

#include "kernels/half_io.h"
#include "kernels/view_math.h"

namespace kiln::kernels {

struct AddParams {
    VecPlan plan;
    ViewDesc a_d, b_d, dst_d;
    const uint16_t* a;
    const uint16_t* b;  // null: copy
    uint16_t* dst;
    float scale_a;
};

template <int V, bool kHasB>
KILN_HD inline void add_chunk(const AddParams& p, int64_t row, int64_t col) {
    float va[V];
    load_halves<V>(p.a + plan_offset(p.a_d, p.plan, row, col), va);
    if constexpr (kHasB) {
        float vb[V];
        load_halves<V>(p.b + plan_offset(p.b_d, p.plan, row, col), vb);
        KILN_UNROLL
        for (int i = 0; i < V; ++i)
            va[i] = va[i] * p.scale_a + vb[i];
    }
    store_halves<V>(p.dst + plan_offset(p.dst_d, p.plan, row, col), va);
}

// dst = a * scale_a + b (b.data null: dst = a).
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
    const ViewDesc descs[3] = {a.desc, p.b_d, dst.desc};
    const uintptr_t addrs[3] = {reinterpret_cast<uintptr_t>(a.data),
                                reinterpret_cast<uintptr_t>(b.data ? b.data : a.data),
                                reinterpret_cast<uintptr_t>(dst.data)};
    p.plan = plan_vectors(descs, addrs, 3);
    return p;
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

}  // namespace kiln::kernels
