// The fused attention kernel's tiling and online-softmax steps (kernels/attention_math.h), run
// on the CPU in the kernel's order (key tiles of 32, one key per "lane", per-tile maximum,
// rescale, weighted V accumulation, final division) against a naive double softmax.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/half.h"
#include "kernels/attention_math.h"

namespace kiln::kernels {
namespace {

std::vector<float> random_halves(size_t n, uint32_t seed, float scale) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v)
        x = core::half_to_float(core::float_to_half(dist(rng)));  // what the kernel loads
    return v;
}

// One head's output for one query, as the kernel computes it. q: [d], k and v: [keys][d].
std::vector<float> tiled_attention(const float* q,
                                   const std::vector<float>& k,
                                   const std::vector<float>& v,
                                   int keys,
                                   int d,
                                   float scale) {
    std::vector<float> qs(static_cast<size_t>(d)), acc(static_cast<size_t>(d), 0.0f);
    for (int i = 0; i < d; ++i)
        qs[static_cast<size_t>(i)] = q[i] * scale;
    SoftmaxState state;
    for (int t0 = 0; t0 < keys; t0 += kAttentionKeyTile) {
        float scores[kAttentionKeyTile];
        float tile_max = -INFINITY;
        for (int lane = 0; lane < kAttentionKeyTile; ++lane) {
            float s = 0.0f;
            const int key = t0 + lane;
            for (int i = 0; i < d; ++i) {
                const float kv = key < keys ? k[static_cast<size_t>(key) * d + i] : 0.0f;
                s = std::fma(qs[static_cast<size_t>(i)], kv, s);
            }
            scores[lane] = key < keys ? s : -INFINITY;
            tile_max = std::max(tile_max, scores[lane]);
        }
        const float rescale = softmax_tile_begin(state, tile_max);
        float w[kAttentionKeyTile], sum = 0.0f;
        for (int lane = 0; lane < kAttentionKeyTile; ++lane) {
            w[lane] = softmax_tile_weight(state, scores[lane]);
            sum += w[lane];
        }
        state.sum += sum;
        for (float& a : acc)
            a *= rescale;
        for (int j = 0; j < kAttentionKeyTile; ++j) {
            const int key = t0 + j;
            for (int i = 0; i < d; ++i) {
                const float vv = key < keys ? v[static_cast<size_t>(key) * d + i] : 0.0f;
                acc[static_cast<size_t>(i)] = std::fma(w[j], vv, acc[static_cast<size_t>(i)]);
            }
        }
    }
    for (float& a : acc)
        a = softmax_finish(state, a);
    return acc;
}

std::vector<double> naive_attention(const float* q,
                                    const std::vector<float>& k,
                                    const std::vector<float>& v,
                                    int keys,
                                    int d,
                                    double scale) {
    std::vector<double> s(static_cast<size_t>(keys));
    double m = -INFINITY;
    for (int j = 0; j < keys; ++j) {
        double dot = 0;
        for (int i = 0; i < d; ++i)
            dot += static_cast<double>(q[i]) * k[static_cast<size_t>(j) * d + i];
        s[static_cast<size_t>(j)] = dot * scale;
        m = std::max(m, s[static_cast<size_t>(j)]);
    }
    double z = 0;
    for (double& x : s) {
        x = std::exp(x - m);
        z += x;
    }
    std::vector<double> o(static_cast<size_t>(d), 0.0);
    for (int j = 0; j < keys; ++j)
        for (int i = 0; i < d; ++i)
            o[static_cast<size_t>(i)] +=
                s[static_cast<size_t>(j)] / z * v[static_cast<size_t>(j) * d + i];
    return o;
}

TEST(AttentionMath, TiledOnlineSoftmaxMatchesNaive) {
    // Head dims of SD 1.x (40, 80, 160), 64, the test models' small ones and an odd one; key
    // counts around the tile size, CLIP's 77 and a long self-attention sequence.
    for (const int d : {3, 8, 16, 40, 64, 80, 160}) {
        for (const int keys : {1, 4, 31, 32, 33, 77, 300}) {
            const float scale = 1.0f / std::sqrt(static_cast<float>(d));
            const auto q = random_halves(static_cast<size_t>(3 * d), 1 + d, 1.0f);
            const auto k = random_halves(static_cast<size_t>(keys) * d, 2 + keys, 1.0f);
            const auto v = random_halves(static_cast<size_t>(keys) * d, 3 + keys, 1.0f);
            for (int qi = 0; qi < 3; ++qi) {
                const float* qq = q.data() + qi * d;
                const auto got = tiled_attention(qq, k, v, keys, d, scale);
                const auto want = naive_attention(qq, k, v, keys, d, scale);
                for (int i = 0; i < d; ++i) {
                    ASSERT_NEAR(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 2e-6)
                        << "d " << d << " keys " << keys << " dim " << i;
                }
            }
        }
    }
}

TEST(AttentionMath, LargeScoresStayFinite) {
    // Scores around +-200 overflow a naive exp in fp32; the running maximum keeps them finite.
    const int d = 64, keys = 100;
    const auto q = random_halves(static_cast<size_t>(d), 5, 8.0f);
    const auto k = random_halves(static_cast<size_t>(keys) * d, 6, 8.0f);
    const auto v = random_halves(static_cast<size_t>(keys) * d, 7, 1.0f);
    const auto got = tiled_attention(q.data(), k, v, keys, d, 1.0f);
    const auto want = naive_attention(q.data(), k, v, keys, d, 1.0);
    for (int i = 0; i < d; ++i) {
        ASSERT_TRUE(std::isfinite(got[static_cast<size_t>(i)]));
        ASSERT_NEAR(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 1e-5);
    }
}

TEST(AttentionMath, TileBeginKeepsEmptyStateAndRescales) {
    SoftmaxState s;
    EXPECT_EQ(softmax_tile_begin(s, -INFINITY), 1.0f);  // a fully masked tile changes nothing
    EXPECT_EQ(s.max, -INFINITY);
    EXPECT_EQ(s.sum, 0.0f);
    EXPECT_EQ(softmax_tile_weight(s, -INFINITY), 0.0f);
    EXPECT_EQ(softmax_tile_begin(s, 2.0f), 0.0f);  // first tile: the (empty) accumulator is zeroed
    s.sum += softmax_tile_weight(s, 2.0f);         // 1
    EXPECT_FLOAT_EQ(softmax_tile_begin(s, 3.0f), std::exp(-1.0f));
    EXPECT_FLOAT_EQ(s.sum, std::exp(-1.0f));
    EXPECT_EQ(softmax_tile_begin(s, 1.0f), 1.0f);  // a lower tile maximum keeps the state
    EXPECT_EQ(softmax_finish(SoftmaxState{}, 5.0f), 0.0f);
}

TEST(AttentionMath, LaunchShapeCoversEveryQueryAndFitsSharedMemory) {
    for (int d = 1; d <= kMaxAttentionHeadDim; ++d) {
        const int dpl = attention_dims_per_lane(d);
        ASSERT_GE(dpl * 32, d);
        ASSERT_LE(dpl, 5);
        // Dynamic shared memory a launch may use without cudaFuncSetAttribute: 48 KiB.
        ASSERT_LE(attention_smem_floats(d) * 4, 48 * 1024) << "d " << d;
        for (const int64_t queries : {int64_t{1}, int64_t{15}, int64_t{16}, int64_t{4096}}) {
            const AttentionGrid g = attention_grid(queries, 8, d);
            ASSERT_GE(g.query_blocks * g.queries_per_block, queries);
            ASSERT_LT((g.query_blocks - 1) * g.queries_per_block, queries);
            ASSERT_EQ(g.queries_per_block, kAttentionWarps * attention_queries_per_warp(dpl));
        }
    }
}

}  // namespace
}  // namespace kiln::kernels
