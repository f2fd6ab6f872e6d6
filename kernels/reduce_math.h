// Reductions the normalisation and attention kernels are built on, as host-device functions
// so that the CPU tests check them: Welford mean/variance with Chan's merge (GroupNorm,
// LayerNorm) and the online-softmax state with its merge (fused attention).
#pragma once

#include <cmath>
#include <cstdint>

#include "core/half.h"               // KILN_HD
#include "kernels/pointwise_math.h"  // silu

namespace kiln::kernels {

struct Welford {
    float mean = 0.0f;
    float m2 = 0.0f;  // sum of squared deviations from the mean
    float count = 0.0f;

    KILN_HD float variance() const { return count > 0.0f ? m2 / count : 0.0f; }  // biased
};

KILN_HD inline void welford_push(Welford& s, float x) {
    s.count += 1.0f;
    const float d = x - s.mean;
    s.mean += d / s.count;
    s.m2 += d * (x - s.mean);
}

// Chan et al.: merge of two partial states (warp shuffles and block reductions use it).
KILN_HD inline Welford welford_merge(const Welford& a, const Welford& b) {
    if (a.count == 0.0f)
        return b;
    if (b.count == 0.0f)
        return a;
    Welford r;
    r.count = a.count + b.count;
    const float d = b.mean - a.mean;
    const float fb = b.count / r.count;
    r.mean = a.mean + d * fb;
    r.m2 = a.m2 + b.m2 + d * d * a.count * fb;
    return r;
}

// GroupNorm / LayerNorm of one value once the group's statistics are known.
KILN_HD inline float normalize(float x, const Welford& s, float eps, float gamma, float beta) {
    return (x - s.mean) / sqrtf(s.variance() + eps) * gamma + beta;
}

// Online softmax: the running maximum and the sum of exp(x - max) over the scores seen.
// An output accumulator o (sum of exp(x - max) * v) is rescaled by the returned factor
// whenever the maximum grows.
struct SoftmaxState {
    float max = -INFINITY;
    float sum = 0.0f;
};

// Adds score x; returns the factor the accumulated output must be multiplied by before
// exp(x - new max) * v is added to it (written to *weight).
KILN_HD inline float softmax_push(SoftmaxState& s, float x, float* weight) {
    const float m = x > s.max ? x : s.max;
    const float rescale = s.max == -INFINITY ? 0.0f : expf(s.max - m);
    const float p = expf(x - m);
    s.sum = s.sum * rescale + p;
    s.max = m;
    *weight = p;
    return rescale;
}

// Merge of two partial states (two key blocks); *scale_a and *scale_b are the factors their
// output accumulators take in the merged one: o = o_a * scale_a + o_b * scale_b.
KILN_HD inline SoftmaxState softmax_merge(const SoftmaxState& a,
                                          const SoftmaxState& b,
                                          float* scale_a,
                                          float* scale_b) {
    SoftmaxState r;
    r.max = a.max > b.max ? a.max : b.max;
    if (r.max == -INFINITY) {
        *scale_a = 0.0f;
        *scale_b = 0.0f;
        return r;
    }
    *scale_a = a.max == -INFINITY ? 0.0f : expf(a.max - r.max);
    *scale_b = b.max == -INFINITY ? 0.0f : expf(b.max - r.max);
    r.sum = a.sum * *scale_a + b.sum * *scale_b;
    return r;
}

}  // namespace kiln::kernels

namespace kiln::kernels {

// How GroupNorm's statistics pass splits one group's pixels across blocks: `splits` blocks
// per group, each over `pixels_per_split` pixels (the last one fewer), so that groups x splits
// blocks fill the GPU while each block still reduces at least min_elements values.
struct NormSplit {
    int splits = 1;
    int64_t pixels_per_split = 0;
};

KILN_HD inline NormSplit norm_split(int64_t pixels,
                                    int channels_per_group,
                                    int groups,
                                    int target_blocks,
                                    int64_t min_elements,
                                    int max_splits) {
    NormSplit s;
    int64_t want = (target_blocks + groups - 1) / groups;
    const int64_t elements = pixels * channels_per_group;
    const int64_t by_size = elements / (min_elements > 0 ? min_elements : 1);
    if (want > by_size)
        want = by_size;
    if (want > max_splits)
        want = max_splits;
    if (want > pixels)
        want = pixels;
    if (want < 1)
        want = 1;
    s.pixels_per_split = (pixels + want - 1) / want;
    s.splits = static_cast<int>((pixels + s.pixels_per_split - 1) / s.pixels_per_split);
    if (s.splits < 1)
        s.splits = 1;
    return s;
}

}  // namespace kiln::kernels
