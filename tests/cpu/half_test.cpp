#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/half.h"

namespace kiln::core {
namespace {

TEST(Half, EveryHalfRoundTripsThroughFloat) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const auto bits = static_cast<uint16_t>(h);
        const float f = half_to_float(bits);
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(half_to_float(float_to_half(f))));
            continue;
        }
        EXPECT_EQ(float_to_half(f), bits) << h;
    }
}

TEST(Half, KnownValuesAndRounding) {
    EXPECT_EQ(half_to_float(0x3c00), 1.0f);
    EXPECT_EQ(half_to_float(0xc000), -2.0f);
    EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
    EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
    EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // rounds to infinity
    EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
    // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1).
    EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
    EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
    EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // halfway to min subnormal: even
    EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);
    EXPECT_EQ(float_to_half(-0.0f), 0x8000);
}

TEST(Half, Bfloat16) {
    EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
    EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(float_to_bf16(1.00390625f), 0x3f80);  // halfway, ties to even
    EXPECT_EQ(float_to_bf16(1.01171875f), 0x3f82);  // halfway, odd -> up
    EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

}  // namespace
}  // namespace kiln::core
