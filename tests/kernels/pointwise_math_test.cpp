// Activations, uint8 <-> value conversion with normalisation/clamp/rounding, and the fp16
// rounding every kernel store applies.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/pointwise_math.h"

namespace kiln::kernels {
namespace {

TEST(Pointwise, Activations) {
    EXPECT_EQ(activate(-2.0f, Act::NONE, 0.2f), -2.0f);
    EXPECT_EQ(activate(-2.0f, Act::RELU, 0.2f), 0.0f);
    EXPECT_EQ(activate(3.0f, Act::RELU, 0.2f), 3.0f);
    EXPECT_FLOAT_EQ(activate(-2.0f, Act::LEAKY_RELU, 0.2f), -0.4f);
    EXPECT_EQ(activate(3.0f, Act::LEAKY_RELU, 0.2f), 3.0f);
    EXPECT_FLOAT_EQ(activate(-2.0f, Act::PRELU, 0.25f), -0.5f);
}

TEST(Pointwise, SiluAndExactGelu) {
    for (const float x : {-8.0f, -3.0f, -1.0f, -0.25f, 0.0f, 0.5f, 1.0f, 2.5f, 9.0f}) {
        const double xd = x;
        EXPECT_NEAR(activate(x, Act::SILU, 0.0f), xd / (1.0 + std::exp(-xd)), 1e-6);
        EXPECT_NEAR(activate(x, Act::GELU, 0.0f), 0.5 * xd * (1.0 + std::erf(xd / std::sqrt(2.0))),
                    1e-6);
    }
    // PyTorch: F.gelu(torch.tensor(1.0)) = 0.8413447; F.silu(1.0) = 0.7310586.
    EXPECT_NEAR(gelu(1.0f), 0.8413447f, 1e-6f);
    EXPECT_NEAR(silu(1.0f), 0.7310586f, 1e-6f);
}

TEST(Pointwise, Sigmoid) {
    for (const float x : {-30.0f, -8.0f, -1.0f, -0.25f, 0.0f, 0.5f, 1.0f, 2.5f, 9.0f, 30.0f}) {
        const double want = 1.0 / (1.0 + std::exp(-static_cast<double>(x)));
        EXPECT_NEAR(activate(x, Act::SIGMOID, 0.0f), want, want * 1e-6) << x;
    }
    // torch.sigmoid(torch.tensor(1.0)) = 0.7310586.
    EXPECT_NEAR(sigmoid(1.0f), 0.7310586f, 1e-6f);
    EXPECT_EQ(sigmoid(0.0f), 0.5f);
    // exp(-x) overflows below x = -88: the result is 0, not NaN; large x saturates at 1.
    EXPECT_EQ(sigmoid(-100.0f), 0.0f);
    EXPECT_EQ(sigmoid(-std::numeric_limits<float>::infinity()), 0.0f);
    EXPECT_EQ(sigmoid(100.0f), 1.0f);
    EXPECT_EQ(sigmoid(std::numeric_limits<float>::infinity()), 1.0f);
    EXPECT_TRUE(std::isnan(sigmoid(std::numeric_limits<float>::quiet_NaN())));
}

TEST(Pointwise, EveryByteSurvivesAnFp16RoundTrip) {
    // u8 -> value -> fp16 storage -> u8 is the identity for the [0,1] and [-1,1] conventions.
    for (const auto& [scale, offset] : {std::pair{1.0f, 0.0f}, std::pair{2.0f, -1.0f}}) {
        for (int b = 0; b < 256; ++b) {
            const float v = round_half(u8_to_value(static_cast<uint8_t>(b), scale, offset));
            EXPECT_EQ(value_to_u8(v, scale, offset), b) << scale << " " << offset;
        }
    }
}

TEST(Pointwise, ClampAndRoundHalfUp) {
    EXPECT_EQ(value_to_u8(-0.3f, 1.0f, 0.0f), 0);
    EXPECT_EQ(value_to_u8(1.7f, 1.0f, 0.0f), 255);
    EXPECT_EQ(value_to_u8(std::numeric_limits<float>::quiet_NaN(), 1.0f, 0.0f), 0);
    EXPECT_EQ(value_to_u8(std::numeric_limits<float>::infinity(), 1.0f, 0.0f), 255);
    // floor(v * 255 + 0.5): just below and at the half step.
    EXPECT_EQ(value_to_u8(10.49f / 255.0f, 1.0f, 0.0f), 10);
    EXPECT_EQ(value_to_u8(10.51f / 255.0f, 1.0f, 0.0f), 11);
    EXPECT_EQ(value_to_u8(0.0f, 2.0f, -1.0f), 128);  // 0.5 * 255 + 0.5 = 128
}

TEST(Pointwise, HalfRoundingIsNearestEven) {
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1).
    EXPECT_EQ(round_half(1.0f + std::ldexp(1.0f, -11)), 1.0f);
    // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: ties to the even 1 + 2^-9.
    EXPECT_EQ(round_half(1.0f + 3.0f * std::ldexp(1.0f, -11)), 1.0f + std::ldexp(1.0f, -9));
    // The relative error of a stored value is at most 2^-11.
    for (float v = -70000.0f; v < 70000.0f; v += 123.456f) {
        if (std::abs(v) < 65504.0f && std::abs(v) > 1e-4f) {
            EXPECT_LE(std::abs(round_half(v) - v), std::abs(v) * std::ldexp(1.0f, -11));
        }
    }
    EXPECT_TRUE(std::isinf(round_half(70000.0f)));
}

}  // namespace
}  // namespace kiln::kernels
