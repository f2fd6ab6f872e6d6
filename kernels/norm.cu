// GroupNorm over fp16 NHWC views, fused with SiLU and a residual add (diffusion UNet resnet
// blocks), and LayerNorm per pixel over its channels (one warp per pixel). Statistics are Welford
// partials per (group, pixel range) block merged with Chan's formula (kernels/reduce_math.h,
// CPU-tested), then one elementwise apply pass.
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.h"
#include "kernels/reduce_math.h"

namespace kiln::kernels {

namespace {

constexpr int kTargetBlocks = 264;  // 2 per SM on an H100
constexpr int64_t kMinElementsPerBlock = 4096;
constexpr int kMaxSplits = 64;

struct NormParams {
    ViewDesc x_d, y_d, r_d;
    const uint16_t* x;
    uint16_t* y;
    const uint16_t* r;  // null: no residual
    const float* gamma;
    const float* beta;
    Welford* partials;  // [groups][splits]
    float2* stats;      // [groups]: mean, rstd
    int groups, cpg;
    NormSplit split;
    float eps, r_scale;
    bool silu;
    VecPlan plan;
};

__device__ __forceinline__ Welford shfl_down(const Welford& s, int delta) {
    Welford o;
    o.mean = __shfl_down_sync(0xffffffffu, s.mean, delta);
    o.m2 = __shfl_down_sync(0xffffffffu, s.m2, delta);
    o.count = __shfl_down_sync(0xffffffffu, s.count, delta);
    return o;
}

template <int kBlock>
__global__ void __launch_bounds__(kBlock) norm_stats_kernel(const NormParams p) {
    const int g = blockIdx.x;
    const int s = blockIdx.y;
    const int64_t p0 = s * p.split.pixels_per_split;
    int64_t p1 = p0 + p.split.pixels_per_split;
    const int64_t pixels = p.x_d.pixels();
    if (p1 > pixels)
        p1 = pixels;
    Welford acc;
    const int64_t n = (p1 - p0) * p.cpg;
    for (int64_t i = threadIdx.x; i < n; i += kBlock) {
        const int64_t pixel = p0 + i / p.cpg;
        const int ch = g * p.cpg + static_cast<int>(i % p.cpg);
        welford_push(acc, __half2float(as_half(p.x)[p.x_d.pixel_offset(pixel, ch)]));
    }
#pragma unroll
    for (int delta = 16; delta > 0; delta /= 2)
        acc = welford_merge(acc, shfl_down(acc, delta));
    __shared__ Welford warps[kBlock / 32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0)
        warps[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < kBlock / 32 ? warps[lane] : Welford{};
#pragma unroll
        for (int delta = 16; delta > 0; delta /= 2)
            acc = welford_merge(acc, shfl_down(acc, delta));
        if (lane == 0)
            p.partials[g * p.split.splits + s] = acc;
    }
}

template <int kBlock>
__global__ void __launch_bounds__(kBlock) norm_merge_kernel(const NormParams p) {
    const int g = blockIdx.x * kBlock + threadIdx.x;
    if (g >= p.groups)
        return;
    Welford acc;
    for (int s = 0; s < p.split.splits; ++s)
        acc = welford_merge(acc, p.partials[g * p.split.splits + s]);
    p.stats[g] = make_float2(acc.mean, rsqrtf(acc.variance() + p.eps));
}

template <int V>
__device__ __forceinline__ void norm_apply_chunk(const NormParams& p, int64_t row, int64_t col) {
    float v[V];
    load_halves<V>(p.x + plan_offset(p.x_d, p.plan, row, col), v);
    KILN_UNROLL
    for (int i = 0; i < V; ++i) {
        const int ch = plan_channel(p.y_d, p.plan, col + i);
        const float2 st = p.stats[ch / p.cpg];
        const float t =
            (v[i] - st.x) * st.y * (p.gamma ? p.gamma[ch] : 1.0f) + (p.beta ? p.beta[ch] : 0.0f);
        v[i] = p.silu ? silu(t) : t;
    }
    if (p.r) {
        float r[V];
        load_halves<V>(p.r + plan_offset(p.r_d, p.plan, row, col), r);
#pragma unroll
        for (int i = 0; i < V; ++i)
            v[i] = v[i] * p.r_scale + r[i];
    }
    store_halves<V>(p.y + plan_offset(p.y_d, p.plan, row, col), v);
}

template <int kBlock, int kVec>
__global__ void __launch_bounds__(kBlock) norm_apply_kernel(const NormParams p) {
    const int64_t chunks = p.plan.chunks();
    for (int64_t k = global_thread(); k < chunks; k += grid_threads())
        norm_apply_chunk<kVec>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    if (blockIdx.x == 0 && static_cast<int>(threadIdx.x) < p.plan.tail)
        norm_apply_chunk<1>(p, 0, p.plan.tail_start() + threadIdx.x);
}

__device__ __forceinline__ Welford shfl_xor(const Welford& s, int mask) {
    Welford o;
    o.mean = __shfl_xor_sync(0xffffffffu, s.mean, mask);
    o.m2 = __shfl_xor_sync(0xffffffffu, s.m2, mask);
    o.count = __shfl_xor_sync(0xffffffffu, s.count, mask);
    return o;
}

struct LayerNormParams {
    ViewDesc x_d, y_d;
    const uint16_t* x;
    uint16_t* y;
    const float* gamma;
    const float* beta;
    float eps;
    bool silu;
};

// One warp per pixel: Welford over the lane's channels (lane, lane + 32, ...), butterfly
// merge (every lane ends with the pixel's statistics), then the normalised values.
template <int kBlock>
__global__ void __launch_bounds__(kBlock) layer_norm_kernel(const LayerNormParams p) {
    constexpr int kWarps = kBlock / 32;
    const int lane = threadIdx.x % 32;
    const int64_t pixels = p.x_d.pixels();
    const int c = p.x_d.c;
    for (int64_t px = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32; px < pixels;
         px += static_cast<int64_t>(gridDim.x) * kWarps) {
        Welford acc;
        for (int ch = lane; ch < c; ch += 32)
            welford_push(acc, __half2float(as_half(p.x)[p.x_d.pixel_offset(px, ch)]));
#pragma unroll
        for (int mask = 16; mask > 0; mask /= 2)
            acc = welford_merge(acc, shfl_xor(acc, mask));
        for (int ch = lane; ch < c; ch += 32) {
            const float x = __half2float(as_half(p.x)[p.x_d.pixel_offset(px, ch)]);
            const float t =
                normalize(x, acc, p.eps, p.gamma ? p.gamma[ch] : 1.0f, p.beta ? p.beta[ch] : 0.0f);
            as_half(p.y)[p.y_d.pixel_offset(px, ch)] = __float2half_rn(p.silu ? silu(t) : t);
        }
    }
}

NormSplit split_for(const ViewDesc& x, int groups) {
    return norm_split(x.pixels(), x.c / groups, groups, kTargetBlocks, kMinElementsPerBlock,
                      kMaxSplits);
}

}  // namespace

size_t group_norm_scratch_bytes(const ViewDesc& x, int groups) {
    const NormSplit s = split_for(x, groups);
    const size_t partials = static_cast<size_t>(groups) * s.splits * sizeof(Welford);
    return (partials + 15) / 16 * 16 + static_cast<size_t>(groups) * sizeof(float2);
}

void group_norm(const DeviceView& x,
                const DeviceView& y,
                const GroupNormArgs& args,
                void* scratch,
                cudaStream_t stream) {
    if (args.groups <= 0 || x.desc.c % args.groups != 0) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "group_norm: " + std::to_string(x.desc.c) + " channels in " +
                              std::to_string(args.groups) + " groups");
    }
    NormParams p{};
    p.x_d = x.desc;
    p.y_d = y.desc;
    p.x = x.data;
    p.y = y.data;
    p.r = args.residual.data;
    p.r_d = args.residual.data ? args.residual.desc : y.desc;
    p.gamma = args.gamma;
    p.beta = args.beta;
    p.groups = args.groups;
    p.cpg = x.desc.c / args.groups;
    p.split = split_for(x.desc, args.groups);
    p.eps = args.eps;
    p.r_scale = args.residual_scale;
    p.silu = args.silu;
    auto* bytes = static_cast<uint8_t*>(scratch);
    p.partials = reinterpret_cast<Welford*>(bytes);
    const size_t partials = static_cast<size_t>(p.groups) * p.split.splits * sizeof(Welford);
    p.stats = reinterpret_cast<float2*>(bytes + (partials + 15) / 16 * 16);
    const ViewDesc descs[3] = {x.desc, y.desc, p.r_d};
    const uintptr_t addrs[3] = {reinterpret_cast<uintptr_t>(x.data),
                                reinterpret_cast<uintptr_t>(y.data),
                                reinterpret_cast<uintptr_t>(p.r ? p.r : y.data)};
    p.plan = plan_vectors(descs, addrs, 3);
    if (x.desc.pixels() == 0)
        return;

    norm_stats_kernel<kBlockSize><<<dim3(p.groups, p.split.splits), kBlockSize, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("group_norm stats");
    norm_merge_kernel<64><<<static_cast<unsigned>((p.groups + 63) / 64), 64, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("group_norm merge");
    const Launch1D l =
        launch_1d(p.plan.chunks() > 0 ? p.plan.chunks() : p.plan.tail, kBlockSize, kMaxBlocks);
    if (p.plan.vec == kHalfVector)
        norm_apply_kernel<kBlockSize, kHalfVector><<<l.grid, l.block, 0, stream>>>(p);
    else
        norm_apply_kernel<kBlockSize, 1><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("group_norm apply");
}

void layer_norm(const DeviceView& x,
                const DeviceView& y,
                const GroupNormArgs& args,
                cudaStream_t stream) {
    if (x.desc.c != y.desc.c || x.desc.pixels() != y.desc.pixels())
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "layer_norm: x and y shapes differ");
    LayerNormParams p{};
    p.x_d = x.desc;
    p.y_d = y.desc;
    p.x = x.data;
    p.y = y.data;
    p.gamma = args.gamma;
    p.beta = args.beta;
    p.eps = args.eps;
    p.silu = args.silu;
    constexpr int kWarps = kBlockSize / 32;
    const Launch1D l = launch_1d(ceil_div(x.desc.pixels(), kWarps), 1, kMaxBlocks);
    if (l.grid == 0)
        return;
    layer_norm_kernel<kBlockSize><<<l.grid, kBlockSize, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("layer_norm");
}

}  // namespace kiln::kernels
