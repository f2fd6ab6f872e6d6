// Window attention (WINDOW_ATTENTION: OmniSR's block and grid attention) as host-device code:
// the Params struct and its builder, the shared-memory layout, and each lane's steps, so that
// kernels/window_attention.cu holds only kernel, launcher and entry and the CPU tests
// (tests/kernels/window_attention_test.cpp) run the same steps in the same order.
//
// qkv [h, w, 3c] (any channel view) -> out [h, w, c]; c = heads * d. One block of
// kWindowAttentionWarps warps per (group, head): the group's n = ws * ws tokens of the head's
// q (pre-scaled), k and v are staged in shared memory as fp32, then each warp takes queries
// t = warp, warp + warps, ...: lane l scores keys u = l, l + 32, ... into the warp's row
// (scale q_t . k_u + bias[head][t][u], the bias first), the warp takes the maximum, each lane
// exponentiates its keys and the warp sums them, then lane l writes output dimensions
// j = l, l + 32, ...: sum_u p_u v_u[j] / sum. OmniSR: n = 64, d = 16, 13.3 KiB of shared memory.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/half_io.h"
#include "kernels/view_math.h"
#include "kernels/window_math.h"

namespace kiln::kernels {

inline constexpr int kWindowAttentionWarps = 4;
inline constexpr int kWindowAttentionThreads = kWindowAttentionWarps * 32;
// The grouped attentions use at most the static shared-memory limit (no opt-in).
inline constexpr size_t kGroupAttentionSmemLimit = 48 * 1024;

// What the entry takes besides the views.
struct WindowAttentionArgs {
    int window = 8;
    bool grid = false;  // PixelGroups::GRID
    int heads = 1;
    float scale = 1.0f;
    const float* bias = nullptr;  // [heads][n][n] fp32 (device memory on the GPU), or null
};

struct WindowAttnParams {
    ViewDesc qkv_d, out_d;
    const uint16_t* qkv;
    uint16_t* out;
    const float* bias;
    PixelGroupMap map;
    int heads, d, n;
    float scale;
};

// Shared memory of one block in floats: q [n][d], k [n][d + 1] (lane u reads row u: rows an
// odd number of banks apart), v [n][d], one score row [n] per warp.
KILN_HD inline int64_t window_attention_smem_floats(int n, int d) {
    const int64_t nn = n;
    return nn * d + nn * (d + 1) + nn * d + static_cast<int64_t>(kWindowAttentionWarps) * nn;
}

inline size_t window_attention_smem_bytes(int n, int d) {
    return static_cast<size_t>(window_attention_smem_floats(n, d)) * sizeof(float);
}

// Whether a group of n tokens with heads of d channels fits one block.
inline bool window_attention_fits(int n, int d) {
    return n >= 1 && d >= 1 && window_attention_smem_bytes(n, d) <= kGroupAttentionSmemLimit;
}

struct WindowSmem {
    float* q;
    float* k;
    float* v;
    float* rows;  // [warps][n]
};

KILN_HD inline WindowSmem window_smem(float* smem, int n, int d) {
    WindowSmem s;
    s.q = smem;
    s.k = s.q + n * d;
    s.v = s.k + n * (d + 1);
    s.rows = s.v + n * d;
    return s;
}

// Element e (of n * d) of group g's head slice: q (times scale), k and v of token e / d,
// dimension e % d.
KILN_HD inline void window_load(const WindowAttnParams& p, int g, int head, int e, WindowSmem s) {
    const int t = e / p.d, j = e - t * p.d;
    const int c = p.out_d.c;
    const uint16_t* px = p.qkv + p.qkv_d.pixel_offset(p.map.pixel(g, t), head * p.d + j);
    float q[1], k[1], v[1];
    load_halves<1>(px, q);
    load_halves<1>(px + c, k);
    load_halves<1>(px + 2 * c, v);
    s.q[t * p.d + j] = q[0] * p.scale;
    s.k[t * (p.d + 1) + j] = k[0];
    s.v[t * p.d + j] = v[0];
}

// Lane `lane`'s scores of query t into row[u] (keys u = lane, lane + 32, ...); returns their
// maximum (-inf when the lane has no key).
KILN_HD inline float window_lane_scores(const WindowAttnParams& p,
                                        WindowSmem s,
                                        int head,
                                        int t,
                                        int lane,
                                        float* row) {
    const float* qt = s.q + t * p.d;
    const float* bias = p.bias ? p.bias + (static_cast<int64_t>(head) * p.n + t) * p.n : nullptr;
    float m = -INFINITY;
    for (int u = lane; u < p.n; u += 32) {
        const float* ku = s.k + u * (p.d + 1);
        float acc = bias ? bias[u] : 0.0f;
        for (int j = 0; j < p.d; ++j)
            acc = fmaf(qt[j], ku[j], acc);
        row[u] = acc;
        m = acc > m ? acc : m;
    }
    return m;
}

// exp(row[u] - m) in place over the lane's keys; returns their sum.
KILN_HD inline float window_lane_weights(int n, int lane, float m, float* row) {
    float sum = 0.0f;
    for (int u = lane; u < n; u += 32) {
        const float e = expf(row[u] - m);
        row[u] = e;
        sum += e;
    }
    return sum;
}

// Output dimensions j = lane, lane + 32, ... of query t: sum_u row[u] v_u[j] / sum, stored.
KILN_HD inline void window_lane_output(const WindowAttnParams& p,
                                       WindowSmem s,
                                       int g,
                                       int head,
                                       int t,
                                       int lane,
                                       const float* row,
                                       float sum) {
    const float inv = 1.0f / sum;
    uint16_t* dst = p.out + p.out_d.pixel_offset(p.map.pixel(g, t), head * p.d);
    for (int j = lane; j < p.d; j += 32) {
        float acc = 0.0f;
        for (int u = 0; u < p.n; ++u)
            acc = fmaf(row[u], s.v[u * p.d + j], acc);
        const float o[1] = {acc * inv};
        store_halves<1>(dst + j, o);
    }
}

// qkv [h, w, 3c] and out [h, w, c] views (h, w multiples of the window; c a multiple of the
// heads: the entry checks).
inline WindowAttnParams make_window_attn_params(const DeviceView& qkv,
                                                const DeviceView& out,
                                                const WindowAttentionArgs& args) {
    WindowAttnParams p{};
    p.qkv_d = qkv.desc;
    p.out_d = out.desc;
    p.qkv = qkv.data;
    p.out = out.data;
    p.bias = args.bias;
    p.map = pixel_group_map(group_layout(false, args.grid), out.desc.h, out.desc.w, args.window);
    p.heads = args.heads;
    p.d = out.desc.c / args.heads;
    p.n = p.map.members();
    p.scale = args.scale;
    return p;
}

// The kernel's walk on one host thread: every (group, head) block, its loads, then each warp's
// queries with the lanes' steps and the butterfly reductions in the device's order. smem:
// window_attention_smem_floats(n, d) floats.
inline void window_attention_host(const WindowAttnParams& p, float* smem) {
    const WindowSmem s = window_smem(smem, p.n, p.d);
    for (int head = 0; head < p.heads; ++head) {
        for (int g = 0; g < p.map.count(); ++g) {
            for (int e = 0; e < p.n * p.d; ++e)
                window_load(p, g, head, e, s);
            for (int warp = 0; warp < kWindowAttentionWarps; ++warp) {
                float* row = s.rows + warp * p.n;
                for (int t = warp; t < p.n; t += kWindowAttentionWarps) {
                    float lanes[kWarpLanes];
                    for (int lane = 0; lane < kWarpLanes; ++lane)
                        lanes[lane] = window_lane_scores(p, s, head, t, lane, row);
                    const float m = butterfly_max(lanes);
                    for (int lane = 0; lane < kWarpLanes; ++lane)
                        lanes[lane] = window_lane_weights(p.n, lane, m, row);
                    const float sum = butterfly_sum(lanes);
                    for (int lane = 0; lane < kWarpLanes; ++lane)
                        window_lane_output(p, s, g, head, t, lane, row, sum);
                }
            }
        }
    }
}

}  // namespace kiln::kernels
