// Tiling and online-softmax steps of the fused attention kernel (attention.cu), host-device
// so that the CPU tests run the kernel's exact sequence of operations
// (tests/kernels/attention_math_test.cpp).
//
// The kernel: one block of kAttentionWarps warps per (tile of queries, head); each warp owns
// attention_queries_per_warp() queries. Keys are walked in tiles of kAttentionKeyTile (= one
// key per lane): K and V of a tile are staged in shared memory (fp32), each lane computes the
// score of its key for each query, the warp takes the tile's maximum, rescales its running
// state (softmax_tile_begin) and accumulates p_j * v_j into per-lane output slices (lane l
// owns dimensions l, l + 32, ...). The output is acc / sum at the end.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/half.h"  // KILN_HD
#include "kernels/reduce_math.h"

namespace kiln::kernels {

inline constexpr int kAttentionKeyTile = 32;  // keys per tile: one per lane
inline constexpr int kAttentionWarps = 4;
inline constexpr int kAttentionThreads = kAttentionWarps * 32;
inline constexpr int kMaxAttentionHeadDim = 160;

// Output dimensions each lane accumulates: ceil(head_dim / 32), 1..5.
KILN_HD constexpr int attention_dims_per_lane(int head_dim) {
    return (head_dim + 31) / 32;
}

// Queries per warp: more when the per-lane accumulators are small (K/V tile reuse), fewer
// for wide heads (registers and shared memory).
KILN_HD constexpr int attention_queries_per_warp(int dims_per_lane) {
    return dims_per_lane <= 2 ? 4 : 2;
}

// Shared memory of one block in floats: K tile with rows padded to head_dim + 1 (lane j reads
// row j: conflict-free), V tile, and the block's queries (pre-scaled).
KILN_HD inline int attention_smem_floats(int head_dim) {
    const int qpw = attention_queries_per_warp(attention_dims_per_lane(head_dim));
    return kAttentionKeyTile * (head_dim + 1) + kAttentionKeyTile * head_dim +
           kAttentionWarps * qpw * head_dim;
}

// Row strides of the shared K and V tiles.
KILN_HD inline int attention_k_stride(int head_dim) {
    return head_dim + 1;
}

struct AttentionGrid {
    int64_t query_blocks = 0;  // grid x
    int heads = 0;             // grid y
    int queries_per_block = 0;
};

KILN_HD inline AttentionGrid attention_grid(int64_t queries, int heads, int head_dim) {
    AttentionGrid g;
    g.queries_per_block =
        kAttentionWarps * attention_queries_per_warp(attention_dims_per_lane(head_dim));
    g.query_blocks = (queries + g.queries_per_block - 1) / g.queries_per_block;
    g.heads = heads;
    return g;
}

// Start of a key tile whose largest score is tile_max (-inf when the tile has no valid key):
// the state's maximum becomes max(max, tile_max); returns the factor the output accumulator
// and the running sum take (0 when nothing was seen yet). The sum is rescaled here; the tile's
// weights (softmax_tile_weight) are added to it by the caller.
KILN_HD inline float softmax_tile_begin(SoftmaxState& s, float tile_max) {
    const float m = tile_max > s.max ? tile_max : s.max;
    if (m == -INFINITY)
        return 1.0f;  // nothing valid yet: keep the (zero) state
    const float rescale = s.max == -INFINITY ? 0.0f : expf(s.max - m);
    s.max = m;
    s.sum *= rescale;
    return rescale;
}

// Weight of one score once the tile has begun: exp(score - max); a masked key (score -inf)
// weighs 0.
KILN_HD inline float softmax_tile_weight(const SoftmaxState& s, float score) {
    return score == -INFINITY ? 0.0f : expf(score - s.max);
}

// Final normalisation of an accumulated output value.
KILN_HD inline float softmax_finish(const SoftmaxState& s, float acc) {
    return s.sum > 0.0f ? acc / s.sum : 0.0f;
}

}  // namespace kiln::kernels
