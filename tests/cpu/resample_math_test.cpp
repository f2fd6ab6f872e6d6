#include <gtest/gtest.h>

#include "kernels/resample_math.h"

namespace kiln::kernels {
namespace {

TEST(ResampleMath, CubicWeightsSumToOneAndInterpolate) {
    for (int in : {4, 7, 64}) {
        for (int out : {2, 3, 5, 48, 128}) {
            for (int d = 0; d < out; ++d) {
                const CubicTaps t = cubic_taps(d, in, out);
                EXPECT_NEAR(t.w[0] + t.w[1] + t.w[2] + t.w[3], 1.0f, 1e-6f);
            }
        }
    }
    // Same size: every output sits on a source pixel, weights (0, 1, 0, 0).
    const CubicTaps same = cubic_taps(5, 10, 10);
    EXPECT_EQ(same.first, 4);
    EXPECT_FLOAT_EQ(same.w[1], 1.0f);
    EXPECT_FLOAT_EQ(same.w[0], 0.0f);
    EXPECT_FLOAT_EQ(same.w[2], 0.0f);
    // Halving: output 0 sits between sources 0 and 1 (t = 0.5): symmetric weights
    // -0.09375, 0.59375, 0.59375, -0.09375 for A = -0.75.
    const CubicTaps half = cubic_taps(0, 8, 4);
    EXPECT_EQ(half.first, -1);
    EXPECT_FLOAT_EQ(half.w[0], -0.09375f);
    EXPECT_FLOAT_EQ(half.w[1], 0.59375f);
    EXPECT_FLOAT_EQ(half.w[2], 0.59375f);
    EXPECT_FLOAT_EQ(half.w[3], -0.09375f);
}

TEST(ResampleMath, ClampIndex) {
    EXPECT_EQ(clamp_index(-2, 5), 0);
    EXPECT_EQ(clamp_index(3, 5), 3);
    EXPECT_EQ(clamp_index(5, 5), 4);
}

}  // namespace
}  // namespace kiln::kernels
