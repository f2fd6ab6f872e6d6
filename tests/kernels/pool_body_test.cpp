// Global average pooling's host-device code (kernels/pool_body.h) on the CPU: the split of the
// pixels over blocks covers every pixel once, and the kernels' walk (every thread's sum, the
// block's rows in order, the splits in order) gives the channel means of a double reference,
// through one split and many, on channel slices, writing nothing outside the output view.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/pool_body.h"

namespace kiln::kernels {
namespace {

TEST(PoolSplit, CoversEveryPixelOnceAndFillsTheDevice) {
    for (const int64_t pixels : {1, 7, 255, 256, 257, 1000, 4096, 65536, 1 << 20, 3000017}) {
        for (const int c : {1, 3, 20, 32, 33, 64, 256, 1024}) {
            const PoolSplit s = pool_split(pixels, c);
            ASSERT_EQ(s.channel_tiles, (c + kPoolLanes - 1) / kPoolLanes);
            ASSERT_GE(s.splits, 1);
            ASSERT_LE(s.splits, kPoolMaxSplits);
            // Splits [s * pps, (s + 1) * pps) clipped to the pixels: none empty, none missing.
            ASSERT_GE(s.splits * s.pixels_per_split, pixels) << pixels << " " << c;
            ASSERT_LT((s.splits - 1) * s.pixels_per_split, pixels) << pixels << " " << c;
            if (s.splits > 1) {
                ASSERT_GE(s.pixels_per_split, kPoolMinPixelsPerSplit);
            }
            // As many splits as fill the device (tiles x splits >= the target), within the
            // minimum split size and the cap; rounding the split size up may cost one.
            const int64_t want =
                std::min<int64_t>({(kPoolTargetBlocks + s.channel_tiles - 1) / s.channel_tiles,
                                   pixels / kPoolMinPixelsPerSplit, kPoolMaxSplits});
            EXPECT_GE(s.splits, want - 1) << pixels << " " << c;
        }
    }
    EXPECT_EQ(pool_split(100, 64).splits, 1);  // small maps: one launch, no scratch
    EXPECT_EQ(global_avg_pool_scratch_bytes({10, 10, 64, 64, 0}), 0u);
    const PoolSplit big = pool_split(512 * 512, 64);
    EXPECT_EQ(global_avg_pool_scratch_bytes({512, 512, 64, 64, 0}),
              static_cast<size_t>(big.splits) * 64 * sizeof(float));
}

struct Case {
    const char* name;
    int h, w, c, c_total, c_offset;  // the source view
    int d_total, d_offset;           // the [1, 1, c] output view
    float offset;                    // inputs uniform in [-1, 1] + offset
};

TEST(PoolBody, WalkGivesTheChannelMeans) {
    const Case cases[] = {
        {"small packed c3 (one split)", 13, 11, 3, 3, 0, 3, 0, 0.5f},
        {"c20 of 48 @5, into a slice", 9, 7, 20, 48, 5, 40, 12, 0.0f},
        {"c64 at 256x256 (many splits)", 256, 256, 64, 64, 0, 64, 0, 0.5f},
        {"c33 odd map 301x97 (split tail, two tiles)", 301, 97, 33, 40, 7, 33, 0, -0.25f},
    };
    for (const Case& t : cases) {
        const size_t n = static_cast<size_t>(t.h) * t.w * t.c_total;
        std::vector<uint16_t> src(n);
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
        for (uint16_t& v : src)
            v = core::float_to_half(dist(rng) + t.offset);
        const uint16_t kSentinel = 0x7e00;
        std::vector<uint16_t> dst(static_cast<size_t>(t.d_total), kSentinel);
        const DeviceView sv{src.data(), {t.h, t.w, t.c, t.c_total, t.c_offset}};
        const DeviceView dv{dst.data(), {1, 1, t.c, t.d_total, t.d_offset}};
        std::vector<float> partials(global_avg_pool_scratch_bytes(sv.desc) / sizeof(float));
        const PoolParams p = make_pool_params(sv, dv, partials.data());
        global_avg_pool_host(p);
        const int64_t pixels = static_cast<int64_t>(t.h) * t.w;
        for (int ch = 0; ch < t.c; ++ch) {
            double sum = 0.0;
            for (int64_t px = 0; px < pixels; ++px)
                sum += core::half_to_float(src[static_cast<size_t>(sv.desc.pixel_offset(px, ch))]);
            const double mean = sum / static_cast<double>(pixels);
            const float got = core::half_to_float(dst[static_cast<size_t>(t.d_offset + ch)]);
            // fp16 storage of the mean (2^-11 relative) and fp32 sums.
            ASSERT_NEAR(got, mean, std::abs(mean) * std::ldexp(1.0, -11) + 2e-6)
                << t.name << " channel " << ch << " splits " << p.split.splits;
        }
        for (int i = 0; i < t.d_total; ++i) {
            if (i < t.d_offset || i >= t.d_offset + t.c) {
                ASSERT_EQ(dst[static_cast<size_t>(i)], kSentinel) << t.name << " wrote " << i;
            }
        }
    }
}

// One non-zero pixel at a time: its value reaches the mean exactly once whichever split,
// thread row and channel tile it falls in.
TEST(PoolBody, EveryPixelCountsOnce) {
    const int h = 40, w = 41, c = 40;  // 1640 pixels: 6 splits of 274; two channel tiles
    const PoolSplit split = pool_split(int64_t{h} * w, c);
    ASSERT_GT(split.splits, 1);
    std::vector<uint16_t> src(static_cast<size_t>(h) * w * c, 0);
    std::vector<uint16_t> dst(static_cast<size_t>(c));
    std::vector<float> partials(global_avg_pool_scratch_bytes({h, w, c, c, 0}) / sizeof(float));
    const DeviceView sv{src.data(), {h, w, c, c, 0}};
    const DeviceView dv{dst.data(), {1, 1, c, c, 0}};
    for (int64_t px = 0; px < int64_t{h} * w; px += 37) {
        const int ch = static_cast<int>(px % c);
        src[static_cast<size_t>(px * c + ch)] = core::float_to_half(1640.0f);
        global_avg_pool_host(make_pool_params(sv, dv, partials.data()));
        for (int k = 0; k < c; ++k)
            ASSERT_EQ(core::half_to_float(dst[static_cast<size_t>(k)]), k == ch ? 1.0f : 0.0f)
                << "pixel " << px << " channel " << k;
        src[static_cast<size_t>(px * c + ch)] = 0;
    }
}

}  // namespace
}  // namespace kiln::kernels
