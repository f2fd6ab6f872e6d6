// Welford (GroupNorm/LayerNorm) and online softmax (attention) against double references,
// including every way of merging partial states that warps and blocks use.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/reduce_math.h"

namespace kiln::kernels {
namespace {

std::vector<float> data(size_t n, uint32_t seed, float mean, float spread) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(mean, spread);
    std::vector<float> v(n);
    for (float& x : v)
        x = dist(rng);
    return v;
}

void two_pass(const std::vector<float>& v, double& mean, double& var) {
    mean = 0;
    for (float x : v)
        mean += x;
    mean /= static_cast<double>(v.size());
    var = 0;
    for (float x : v)
        var += (x - mean) * (x - mean);
    var /= static_cast<double>(v.size());
}

TEST(Welford, SequentialMatchesTwoPassEvenFarFromZero) {
    for (float mean : {0.0f, 1000.0f}) {
        const auto v = data(4096, 1, mean, 0.5f);
        Welford s;
        for (float x : v)
            welford_push(s, x);
        double m, var;
        two_pass(v, m, var);
        EXPECT_NEAR(s.mean, m, 1e-5 * std::max(1.0, std::abs(m)));
        EXPECT_NEAR(s.variance(), var, 2e-3 * var);
        EXPECT_EQ(s.count, 4096.0f);
    }
}

TEST(Welford, TreeMergeOfPartialsMatches) {
    // 256 lanes each push a strided subset, then a butterfly merge (as warp shuffles do).
    const auto v = data(320 * 9 + 7, 2, 3.0f, 2.0f);
    std::vector<Welford> lanes(256);
    for (size_t i = 0; i < v.size(); ++i)
        welford_push(lanes[i % lanes.size()], v[i]);
    for (size_t step = 1; step < lanes.size(); step *= 2)
        for (size_t i = 0; i + step < lanes.size(); i += 2 * step)
            lanes[i] = welford_merge(lanes[i], lanes[i + step]);
    double m, var;
    two_pass(v, m, var);
    EXPECT_NEAR(lanes[0].mean, m, 1e-5);
    EXPECT_NEAR(lanes[0].variance(), var, 1e-4 * var);
    EXPECT_EQ(lanes[0].count, static_cast<float>(v.size()));
}

TEST(Welford, MergeWithEmptyIsIdentity) {
    Welford a;
    welford_push(a, 2.0f);
    welford_push(a, 4.0f);
    const Welford e;
    const Welford r1 = welford_merge(a, e), r2 = welford_merge(e, a);
    EXPECT_EQ(r1.mean, 3.0f);
    EXPECT_EQ(r2.mean, 3.0f);
    EXPECT_EQ(r1.variance(), 1.0f);
}

TEST(Welford, NormalizeGivesZeroMeanUnitVariance) {
    const auto v = data(1000, 3, -5.0f, 3.0f);
    Welford s;
    for (float x : v)
        welford_push(s, x);
    std::vector<float> y;
    for (float x : v)
        y.push_back(normalize(x, s, 1e-6f, 1.0f, 0.0f));
    double m, var;
    two_pass(y, m, var);
    EXPECT_NEAR(m, 0.0, 1e-4);
    EXPECT_NEAR(var, 1.0, 1e-3);
}

// softmax(scores) . values (one output dimension) in double.
double reference_attention(const std::vector<float>& s, const std::vector<float>& v) {
    double mx = -INFINITY;
    for (float x : s)
        mx = std::max(mx, double{x});
    double sum = 0, out = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        const double e = std::exp(s[i] - mx);
        sum += e;
        out += e * v[i];
    }
    return out / sum;
}

TEST(OnlineSoftmax, StreamingMatchesReference) {
    for (float spread : {1.0f, 30.0f}) {
        const auto s = data(777, 4, 0.0f, spread);
        const auto v = data(777, 5, 0.0f, 1.0f);
        SoftmaxState st;
        float o = 0.0f;
        for (size_t i = 0; i < s.size(); ++i) {
            float p;
            const float rescale = softmax_push(st, s[i], &p);
            o = o * rescale + p * v[i];
        }
        EXPECT_NEAR(o / st.sum, reference_attention(s, v), 1e-5);
    }
}

TEST(OnlineSoftmax, BlockMergeMatchesSequential) {
    // Key blocks of 64 processed independently, then merged left to right and as a tree.
    const auto s = data(64 * 11 + 13, 6, 2.0f, 8.0f);
    const auto v = data(s.size(), 7, 0.0f, 1.0f);
    struct Part {
        SoftmaxState st;
        float o = 0.0f;
    };
    std::vector<Part> parts;
    for (size_t b = 0; b < s.size(); b += 64) {
        Part p;
        for (size_t i = b; i < std::min(s.size(), b + 64); ++i) {
            float w;
            const float r = softmax_push(p.st, s[i], &w);
            p.o = p.o * r + w * v[i];
        }
        parts.push_back(p);
    }
    auto merge = [](const Part& a, const Part& b) {
        Part r;
        float sa, sb;
        r.st = softmax_merge(a.st, b.st, &sa, &sb);
        r.o = a.o * sa + b.o * sb;
        return r;
    };
    Part left;
    for (const Part& p : parts)
        left = merge(left, p);
    std::vector<Part> tree = parts;
    while (tree.size() > 1) {
        std::vector<Part> next;
        for (size_t i = 0; i < tree.size(); i += 2)
            next.push_back(i + 1 < tree.size() ? merge(tree[i], tree[i + 1]) : tree[i]);
        tree = next;
    }
    const double want = reference_attention(s, v);
    EXPECT_NEAR(left.o / left.st.sum, want, 1e-5);
    EXPECT_NEAR(tree[0].o / tree[0].st.sum, want, 1e-5);
}

TEST(OnlineSoftmax, FullyMaskedBlocksContributeNothing) {
    SoftmaxState empty, a;
    float w;
    softmax_push(a, 1.0f, &w);
    float sa, sb;
    const SoftmaxState r = softmax_merge(empty, a, &sa, &sb);
    EXPECT_EQ(sa, 0.0f);
    EXPECT_EQ(sb, 1.0f);
    EXPECT_EQ(r.sum, a.sum);
    const SoftmaxState z = softmax_merge(empty, empty, &sa, &sb);
    EXPECT_EQ(z.sum, 0.0f);
    EXPECT_FALSE(std::isnan(sa));
}

}  // namespace
}  // namespace kiln::kernels

namespace kiln::kernels {
namespace {

// LayerNorm's warp reduction (norm.cu): lane l pushes channels l, l + 32, ...; then five
// butterfly rounds (lane ^ 16, 8, 4, 2, 1) merge, and every lane must end with the same,
// correct statistics. Channel counts below, at and above the warp width, SD's 320..1280.
TEST(LayerNormMath, ButterflyMergeGivesEveryLaneThePixelStatistics) {
    for (const int c : {1, 3, 8, 31, 32, 33, 40, 320, 768, 1280}) {
        const std::vector<float> v = data(static_cast<size_t>(c), 40 + c, 0.5f, 2.0f);
        Welford lanes[32];
        for (int lane = 0; lane < 32; ++lane)
            for (int ch = lane; ch < c; ch += 32)
                welford_push(lanes[lane], v[static_cast<size_t>(ch)]);
        for (int mask = 16; mask > 0; mask /= 2) {
            Welford next[32];
            for (int lane = 0; lane < 32; ++lane)
                next[lane] = welford_merge(lanes[lane], lanes[lane ^ mask]);
            std::copy(next, next + 32, lanes);
        }
        double mean = 0, var = 0;
        two_pass(v, mean, var);
        for (int lane = 0; lane < 32; ++lane) {
            ASSERT_EQ(lanes[lane].count, static_cast<float>(c));
            ASSERT_NEAR(lanes[lane].mean, mean, 1e-5 * (1 + std::abs(mean))) << "c " << c;
            ASSERT_NEAR(lanes[lane].variance(), var, 1e-4 * var + 1e-6) << "c " << c;
            // Lanes may differ in the last bits (merge order), not more.
            ASSERT_NEAR(lanes[lane].mean, lanes[0].mean, 1e-6 * (1 + std::abs(mean)));
        }
    }
}

TEST(NormSplit, CoversEveryPixelOnceAndRespectsLimits) {
    for (int64_t pixels : {1, 7, 64, 4096, 65536, 1 << 20}) {
        for (int cpg : {1, 10, 40}) {
            for (int groups : {1, 32}) {
                const NormSplit s = norm_split(pixels, cpg, groups, 264, 4096, 64);
                ASSERT_GE(s.splits, 1);
                ASSERT_LE(s.splits, 64);
                // Splits tile [0, pixels): the last one is non-empty, none runs past the end.
                ASSERT_GE(s.pixels_per_split * s.splits, pixels);
                ASSERT_LT(s.pixels_per_split * (s.splits - 1), pixels);
                if (s.splits > 1) {
                    EXPECT_GE(s.pixels_per_split * cpg, 4096 / 2) << pixels << " " << cpg;
                }
            }
        }
    }
    // Small tensors use one block per group; large ones fill the target.
    EXPECT_EQ(norm_split(64, 10, 32, 264, 4096, 64).splits, 1);
    EXPECT_EQ(norm_split(1 << 20, 10, 32, 264, 4096, 64).splits, 9);
}

TEST(GroupNormMath, SplitWelfordMatchesDoubleReference) {
    // The kernel's arithmetic on the host: per-split Welford partials merged, then
    // normalize + SiLU; against a double two-pass reference.
    const int64_t pixels = 777;
    const int c = 40, groups = 4, cpg = c / groups;
    std::mt19937 rng(9);
    std::normal_distribution<float> dist(2.0f, 3.0f);
    std::vector<float> x(static_cast<size_t>(pixels * c));
    for (float& v : x)
        v = dist(rng);
    const NormSplit s = norm_split(pixels, cpg, groups, 64, 256, 64);
    ASSERT_GT(s.splits, 1);
    for (int g = 0; g < groups; ++g) {
        Welford total;
        for (int k = 0; k < s.splits; ++k) {
            Welford part;
            for (int64_t p = k * s.pixels_per_split;
                 p < std::min(pixels, (k + 1) * s.pixels_per_split); ++p)
                for (int ch = g * cpg; ch < (g + 1) * cpg; ++ch)
                    welford_push(part, x[static_cast<size_t>(p * c + ch)]);
            total = welford_merge(total, part);
        }
        double mean = 0, var = 0;
        for (int64_t p = 0; p < pixels; ++p)
            for (int ch = g * cpg; ch < (g + 1) * cpg; ++ch)
                mean += x[static_cast<size_t>(p * c + ch)];
        mean /= static_cast<double>(pixels * cpg);
        for (int64_t p = 0; p < pixels; ++p)
            for (int ch = g * cpg; ch < (g + 1) * cpg; ++ch) {
                const double d = x[static_cast<size_t>(p * c + ch)] - mean;
                var += d * d;
            }
        var /= static_cast<double>(pixels * cpg);
        EXPECT_NEAR(total.mean, mean, 1e-4);
        EXPECT_NEAR(total.variance(), var, 1e-3 * var);
        const float v = x[static_cast<size_t>(g * cpg)];
        const double t = (v - mean) / std::sqrt(var + 1e-5);
        EXPECT_NEAR(silu(normalize(v, total, 1e-5f, 1.0f, 0.0f)), t / (1.0 + std::exp(-t)), 1e-4);
    }
}

}  // namespace
}  // namespace kiln::kernels
