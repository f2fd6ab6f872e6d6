// Fused attention over fp16 NHWC token views: o = softmax(q k^T * scale) v per head, fp32
// math, online softmax over key tiles staged in shared memory. The tiling and the softmax
// steps are kernels/attention_math.h (CPU-tested); this file is kernel -> launcher -> entry.
//
// A simple CUDA-core kernel (no tensor cores): one block of 4 warps per (query tile, head),
// one key per lane per tile, queries pre-scaled in shared memory.
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.h"

namespace kiln::kernels {

namespace {

struct AttnParams {
    ViewDesc q_d, k_d, v_d, o_d;
    const uint16_t* q;
    const uint16_t* k;
    const uint16_t* v;
    uint16_t* o;
    int64_t queries, keys;
    int head_dim;
    float scale;
};

// kDpl: output dimensions per lane (ceil(head_dim / 32)); kQpw: queries per warp.
template <int kDpl, int kQpw>
__global__ void __launch_bounds__(kAttentionThreads) attention_kernel(const AttnParams p) {
    extern __shared__ float smem[];
    const int d_head = p.head_dim;
    const int k_stride = attention_k_stride(d_head);
    float* ks = smem;                               // [tile][d + 1]
    float* vs = ks + kAttentionKeyTile * k_stride;  // [tile][d]
    float* qs = vs + kAttentionKeyTile * d_head;    // [warps * qpw][d]
    const int head = blockIdx.y;
    const int ch0 = head * d_head;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t q_first = static_cast<int64_t>(blockIdx.x) * (kAttentionWarps * kQpw) +
                            static_cast<int64_t>(warp) * kQpw;

    // This warp's queries, scaled; queries past the end are zero (computed, never stored).
    float* my_q = qs + warp * kQpw * d_head;
    for (int e = lane; e < kQpw * d_head; e += 32) {
        const int qi = e / d_head, d = e - qi * d_head;
        const int64_t query = q_first + qi;
        my_q[e] = query < p.queries
                      ? __half2float(as_half(p.q)[p.q_d.pixel_offset(query, ch0 + d)]) * p.scale
                      : 0.0f;
    }

    SoftmaxState state[kQpw];
    float acc[kQpw][kDpl];
#pragma unroll
    for (int qi = 0; qi < kQpw; ++qi) {
#pragma unroll
        for (int i = 0; i < kDpl; ++i)
            acc[qi][i] = 0.0f;
    }

    for (int64_t t0 = 0; t0 < p.keys; t0 += kAttentionKeyTile) {
        __syncthreads();  // the previous tile is consumed (and the queries are written)
        for (int e = threadIdx.x; e < kAttentionKeyTile * d_head; e += kAttentionThreads) {
            const int j = e / d_head, d = e - j * d_head;
            const int64_t key = t0 + j;
            float kv = 0.0f, vv = 0.0f;
            if (key < p.keys) {
                kv = __half2float(as_half(p.k)[p.k_d.pixel_offset(key, ch0 + d)]);
                vv = __half2float(as_half(p.v)[p.v_d.pixel_offset(key, ch0 + d)]);
            }
            ks[j * k_stride + d] = kv;
            vs[j * d_head + d] = vv;
        }
        __syncthreads();
        const bool valid = t0 + lane < p.keys;
        // Scores of this lane's key against the warp's queries: one pass over K's row, each
        // k value used kQpw times (the q values are shared-memory broadcasts).
        const float* my_k = ks + lane * k_stride;
        float w[kQpw];
#pragma unroll
        for (int qi = 0; qi < kQpw; ++qi)
            w[qi] = 0.0f;
        for (int d = 0; d < d_head; ++d) {
            const float kd = my_k[d];
#pragma unroll
            for (int qi = 0; qi < kQpw; ++qi)
                w[qi] = fmaf(my_q[qi * d_head + d], kd, w[qi]);
        }
        // Online softmax per query: tile maximum, rescale, this lane's weight.
#pragma unroll
        for (int qi = 0; qi < kQpw; ++qi) {
            const float s = valid ? w[qi] : -INFINITY;
            const float rescale = softmax_tile_begin(state[qi], warp_max(s));
            w[qi] = softmax_tile_weight(state[qi], s);
            state[qi].sum += warp_sum(w[qi]);
#pragma unroll
            for (int i = 0; i < kDpl; ++i)
                acc[qi][i] *= rescale;
        }
        // acc += w_j * v_j over the tile's keys; each v value used kQpw times.
        for (int j = 0; j < kAttentionKeyTile; ++j) {
            float wj[kQpw];
#pragma unroll
            for (int qi = 0; qi < kQpw; ++qi)
                wj[qi] = __shfl_sync(0xffffffffu, w[qi], j);
            const float* vrow = vs + j * d_head;
#pragma unroll
            for (int i = 0; i < kDpl; ++i) {
                const int d = lane + 32 * i;
                if (d < d_head) {
                    const float vd = vrow[d];
#pragma unroll
                    for (int qi = 0; qi < kQpw; ++qi)
                        acc[qi][i] = fmaf(wj[qi], vd, acc[qi][i]);
                }
            }
        }
    }

#pragma unroll
    for (int qi = 0; qi < kQpw; ++qi) {
        const int64_t query = q_first + qi;
        if (query >= p.queries)
            continue;
#pragma unroll
        for (int i = 0; i < kDpl; ++i) {
            const int d = lane + 32 * i;
            if (d < d_head) {
                as_half(p.o)[p.o_d.pixel_offset(query, ch0 + d)] =
                    __float2half_rn(softmax_finish(state[qi], acc[qi][i]));
            }
        }
    }
}

template <int kDpl>
void launch_attention_dpl(const AttnParams& p, cudaStream_t stream) {
    constexpr int kQpw = attention_queries_per_warp(kDpl);
    const AttentionGrid g = attention_grid(p.queries, p.o_d.c / p.head_dim, p.head_dim);
    const size_t smem = static_cast<size_t>(attention_smem_floats(p.head_dim)) * sizeof(float);
    attention_kernel<kDpl, kQpw>
        <<<dim3(static_cast<unsigned>(g.query_blocks), static_cast<unsigned>(g.heads)),
           kAttentionThreads, smem, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("attention");
}

void launch_attention(const AttnParams& p, cudaStream_t stream) {
    switch (attention_dims_per_lane(p.head_dim)) {
        case 1:
            launch_attention_dpl<1>(p, stream);
            break;
        case 2:
            launch_attention_dpl<2>(p, stream);
            break;
        case 3:
            launch_attention_dpl<3>(p, stream);
            break;
        case 4:
            launch_attention_dpl<4>(p, stream);
            break;
        default:
            launch_attention_dpl<5>(p, stream);
            break;
    }
}

}  // namespace

void attention(const DeviceView& q,
               const DeviceView& k,
               const DeviceView& v,
               const DeviceView& o,
               const AttentionArgs& args,
               cudaStream_t stream) {
    const int c = q.desc.c;
    if (args.heads <= 0 || c % args.heads != 0 || k.desc.c != c || v.desc.c != c || o.desc.c != c ||
        k.desc.pixels() != v.desc.pixels() || o.desc.pixels() != q.desc.pixels()) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "attention: inconsistent q/k/v/o views");
    }
    const int head_dim = c / args.heads;
    if (head_dim > kMaxAttentionHeadDim) {
        throw core::Error(core::ErrorCode::UNSUPPORTED, "attention: head dimension " +
                                                            std::to_string(head_dim) + " > " +
                                                            std::to_string(kMaxAttentionHeadDim));
    }
    if (args.heads > 65535)
        throw core::Error(core::ErrorCode::UNSUPPORTED, "attention: more than 65535 heads");
    AttnParams p{};
    p.q_d = q.desc;
    p.k_d = k.desc;
    p.v_d = v.desc;
    p.o_d = o.desc;
    p.q = q.data;
    p.k = k.data;
    p.v = v.data;
    p.o = o.data;
    p.queries = q.desc.pixels();
    p.keys = k.desc.pixels();
    p.head_dim = head_dim;
    p.scale = args.scale;
    if (p.queries == 0)
        return;
    launch_attention(p, stream);
}

}  // namespace kiln::kernels
