// The noise generator: Philox4x32-10 against Random123's published known-answer vectors, and
// the normal numbers built on it (order independence, moments).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/diffusion/philox_noise.h"

namespace kiln::engine::diffusion {
namespace {

void expect_block(PhiloxBlock in, uint32_t k0, uint32_t k1, PhiloxBlock want) {
    const PhiloxBlock got = philox4x32_10(in, k0, k1);
    for (int i = 0; i < 4; ++i)
        EXPECT_EQ(got.v[i], want.v[i]) << "word " << i;
}

TEST(PhiloxNoise, KnownAnswerVectors) {
    expect_block({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
    expect_block({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
                 {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
    expect_block({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
                 {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST(PhiloxNoise, SameNumberWhateverTheOrder) {
    std::vector<float> forward(64), backward(64);
    for (uint64_t j = 0; j < 64; ++j)
        forward[j] = philox_normal(7, 3, 0, j);
    for (uint64_t j = 64; j-- > 0;)
        backward[j] = philox_normal(7, 3, 0, j);
    EXPECT_EQ(forward, backward);
    // Seeds, images and streams give different numbers.
    EXPECT_NE(philox_normal(7, 3, 0, 5), philox_normal(8, 3, 0, 5));
    EXPECT_NE(philox_normal(7, 3, 0, 5), philox_normal(7, 4, 0, 5));
    EXPECT_NE(philox_normal(7, 3, 0, 5), philox_normal(7, 3, 1, 5));
    EXPECT_NE(philox_normal(7, 3, 0, 4), philox_normal(7, 3, 0, 5));
}

TEST(PhiloxNoise, StandardNormalMoments) {
    // 200k draws: the sample mean has sd 0.0022 and the variance sd 0.0032; the bounds are
    // about 5 sd, so a correct generator fails them with odds below 1e-6.
    constexpr int n = 200000;
    double sum = 0, sum2 = 0, sum4 = 0;
    int beyond3 = 0;
    for (int j = 0; j < n; ++j) {
        const double z = philox_normal(42, 0, 0, static_cast<uint64_t>(j));
        ASSERT_TRUE(std::isfinite(z));
        sum += z;
        sum2 += z * z;
        sum4 += z * z * z * z;
        beyond3 += std::abs(z) > 3.0;
    }
    const double mean = sum / n;
    const double var = sum2 / n - mean * mean;
    EXPECT_NEAR(mean, 0.0, 0.011);
    EXPECT_NEAR(var, 1.0, 0.016);
    EXPECT_NEAR(sum4 / n, 3.0, 0.1);                                // kurtosis of a normal
    EXPECT_NEAR(beyond3 / static_cast<double>(n), 0.0027, 0.0006);  // two-sided 3-sigma tail
}

}  // namespace
}  // namespace kiln::engine::diffusion
