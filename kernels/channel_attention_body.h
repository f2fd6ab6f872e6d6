// Channel attention (CHANNEL_ATTENTION: OmniSR's block and grid channel attention, Restormer's
// transposed attention) as host-device code: the Params struct and its builder, the
// shared-memory layout and each thread's steps, so that kernels/channel_attention.cu holds
// only kernel, launcher and entry and the CPU tests (tests/kernels/window_attention_test.cpp)
// run the same steps in the same order.
//
// qkv [h, w, 3c] (any channel view) -> out [h, w, c]; c = heads * d. Per (group, head) each of
// the head's d channels is a vector over the group's n pixels (n = ws * ws for blocks,
// (h / ws) * (w / ws) for grid groups: 4096 on a 512 x 512 map, so n is never held whole).
// One block of kChannelAttentionThreads threads per (group, head), three phases:
//  1. The pixels in chunks of kChannelChunk: the chunk's q and k of the head are staged in
//     shared memory, then thread i owns items i, i + threads, ... of the d * d products
//     G[a][b] = sum q_a k_b and the 2d squared norms (|q_a|^2, |k_b|^2), each summed in fp32
//     in pixel order by its one owner (no atomics: deterministic).
//  2. Thread a < d turns row a into P[a][b] = softmax_b(temperature * G[a][b] /
//     (max(|q_a|, 1e-12) max(|k_b|, 1e-12))) in place.
//  3. The pixels in chunks again: the chunk's v staged, then each (pixel, a) item is
//     out_a = sum_b P[a][b] v_b.
// Shared memory: the chunk [kChannelChunk][2d], G/P [d][d + 1] (row a read by lanes of
// consecutive a: rows an odd number of banks apart), the norms [2d]. OmniSR (d = 16): 9.2 KiB.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/half_io.h"
#include "kernels/view_math.h"
#include "kernels/window_attention_body.h"  // kGroupAttentionSmemLimit
#include "kernels/window_math.h"

namespace kiln::kernels {

inline constexpr int kChannelAttentionThreads = 256;
inline constexpr int kChannelChunk = 64;  // pixels staged per pass

// What the entry takes besides the views.
struct ChannelAttentionArgs {
    int window = 8;
    bool grid = false;  // PixelGroups::GRID
    int heads = 1;
    const float* temperature = nullptr;  // [heads] fp32 (device memory on the GPU)
};

struct ChannelAttnParams {
    ViewDesc qkv_d, out_d;
    const uint16_t* qkv;
    uint16_t* out;
    const float* temperature;
    PixelGroupMap map;
    int heads, d, n;
};

KILN_HD inline int64_t channel_attention_smem_floats(int d) {
    const int64_t dd = d;
    return static_cast<int64_t>(kChannelChunk) * 2 * dd + dd * (dd + 1) + 2 * dd;
}

inline size_t channel_attention_smem_bytes(int d) {
    return static_cast<size_t>(channel_attention_smem_floats(d)) * sizeof(float);
}

// Whether heads of d channels fit one block (any pixel count does).
inline bool channel_attention_fits(int d) {
    return d >= 1 && channel_attention_smem_bytes(d) <= kGroupAttentionSmemLimit;
}

struct ChannelSmem {
    float* q;      // [kChannelChunk][d] (phase 3: v)
    float* k;      // [kChannelChunk][d]
    float* stats;  // G/P [d][d + 1], then |q_a|^2 [d], |k_b|^2 [d]
};

KILN_HD inline ChannelSmem channel_smem(float* smem, int d) {
    ChannelSmem s;
    s.q = smem;
    s.k = s.q + kChannelChunk * d;
    s.stats = s.k + kChannelChunk * d;
    return s;
}

// Phase 1 items per block: the products and the norms.
KILN_HD inline int channel_items(int d) {
    return d * d + 2 * d;
}

// Where item i's sum lives in stats.
KILN_HD inline int channel_item_slot(int d, int i) {
    if (i < d * d) {
        const int a = i / d;
        return a * (d + 1) + (i - a * d);
    }
    return d * (d + 1) + (i - d * d);
}

// Pixels [t0, t0 + count) of the group in the chunk; element e (of count * d) is pixel
// t0 + e / d, channel e % d of the head. q and k (phase 1) or v alone (phase 3).
KILN_HD inline void channel_load(const ChannelAttnParams& p,
                                 int g,
                                 int head,
                                 int t0,
                                 int e,
                                 bool values,
                                 ChannelSmem s) {
    const int t = e / p.d, j = e - t * p.d;
    const int c = p.out_d.c;
    const uint16_t* px = p.qkv + p.qkv_d.pixel_offset(p.map.pixel(g, t0 + t), head * p.d + j);
    float a[1];
    if (values) {
        load_halves<1>(px + 2 * c, a);
        s.q[e] = a[0];
        return;
    }
    float b[1];
    load_halves<1>(px, a);
    load_halves<1>(px + c, b);
    s.q[e] = a[0];
    s.k[e] = b[0];
}

// Item i over the chunk's `count` pixels, added to its sum (which starts at 0 with the first
// chunk, t0 == 0).
KILN_HD inline void channel_accumulate(const ChannelAttnParams& p,
                                       ChannelSmem s,
                                       int i,
                                       int t0,
                                       int count) {
    const int d = p.d;
    const float* x = s.q;
    const float* y = s.k;
    int a = 0, b = 0;
    if (i < d * d) {
        a = i / d;
        b = i - a * d;
    } else if (i < d * d + d) {
        a = b = i - d * d;  // |q_a|^2
        y = s.q;
    } else {
        a = b = i - d * d - d;  // |k_b|^2
        x = s.k;
    }
    float* slot = s.stats + channel_item_slot(d, i);
    float acc = t0 == 0 ? 0.0f : *slot;
    for (int t = 0; t < count; ++t)
        acc = fmaf(x[t * d + a], y[t * d + b], acc);
    *slot = acc;
}

// Row a of G into P (phase 2): softmax over b of temperature * G[a][b] / (|q_a| |k_b|), the
// norms clamped at 1e-12 (F.normalize).
KILN_HD inline void channel_softmax_row(const ChannelAttnParams& p,
                                        ChannelSmem s,
                                        int head,
                                        int a) {
    const int d = p.d;
    float* row = s.stats + a * (d + 1);
    const float* q2 = s.stats + d * (d + 1);
    const float* k2 = q2 + d;
    const float temperature = p.temperature[head];
    const float qn = fmaxf(sqrtf(q2[a]), 1e-12f);
    float m = -INFINITY;
    for (int b = 0; b < d; ++b) {
        const float kn = fmaxf(sqrtf(k2[b]), 1e-12f);
        const float logit = row[b] / (qn * kn) * temperature;
        row[b] = logit;
        m = logit > m ? logit : m;
    }
    float sum = 0.0f;
    for (int b = 0; b < d; ++b) {
        const float e = expf(row[b] - m);
        row[b] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (int b = 0; b < d; ++b)
        row[b] *= inv;
}

// Output item e (of count * d) of the chunk at t0 (phase 3, v staged): pixel t0 + e / d,
// channel a = e % d of the head.
KILN_HD inline void channel_output(const ChannelAttnParams& p,
                                   ChannelSmem s,
                                   int g,
                                   int head,
                                   int t0,
                                   int e) {
    const int d = p.d;
    const int t = e / d, a = e - t * d;
    const float* pa = s.stats + a * (d + 1);
    const float* v = s.q + t * d;
    float acc = 0.0f;
    for (int b = 0; b < d; ++b)
        acc = fmaf(pa[b], v[b], acc);
    const float o[1] = {acc};
    store_halves<1>(p.out + p.out_d.pixel_offset(p.map.pixel(g, t0 + t), head * d + a), o);
}

// qkv [h, w, 3c] and out [h, w, c] views (the entry checks the shapes).
inline ChannelAttnParams make_channel_attn_params(const DeviceView& qkv,
                                                  const DeviceView& out,
                                                  const ChannelAttentionArgs& args) {
    ChannelAttnParams p{};
    p.qkv_d = qkv.desc;
    p.out_d = out.desc;
    p.qkv = qkv.data;
    p.out = out.data;
    p.temperature = args.temperature;
    p.map = pixel_group_map(group_layout(true, args.grid), out.desc.h, out.desc.w, args.window);
    p.heads = args.heads;
    p.d = out.desc.c / args.heads;
    p.n = p.map.members();
    return p;
}

// The kernel's walk on one host thread: every (group, head) block through the three phases,
// the items of each phase in any order (each has one owner; the sums run in pixel order).
// smem: channel_attention_smem_floats(d) floats.
inline void channel_attention_host(const ChannelAttnParams& p, float* smem) {
    const ChannelSmem s = channel_smem(smem, p.d);
    for (int head = 0; head < p.heads; ++head) {
        for (int g = 0; g < p.map.count(); ++g) {
            for (int t0 = 0; t0 < p.n; t0 += kChannelChunk) {
                const int count = p.n - t0 < kChannelChunk ? p.n - t0 : kChannelChunk;
                for (int e = 0; e < count * p.d; ++e)
                    channel_load(p, g, head, t0, e, false, s);
                for (int i = 0; i < channel_items(p.d); ++i)
                    channel_accumulate(p, s, i, t0, count);
            }
            for (int a = 0; a < p.d; ++a)
                channel_softmax_row(p, s, head, a);
            for (int t0 = 0; t0 < p.n; t0 += kChannelChunk) {
                const int count = p.n - t0 < kChannelChunk ? p.n - t0 : kChannelChunk;
                for (int e = 0; e < count * p.d; ++e)
                    channel_load(p, g, head, t0, e, true, s);
                for (int e = 0; e < count * p.d; ++e)
                    channel_output(p, s, g, head, t0, e);
            }
        }
    }
}

}  // namespace kiln::kernels
