#include <gtest/gtest.h>

#include "core/error.h"
#include "core/index_math.h"
#include "engine/pipeline/float_image.h"
#include "engine/pipeline/tiling.h"

namespace kiln::engine {
namespace {

TEST(Tiling, CoresPartitionWindowsCoverWithContext) {
    for (int multiple : {1, 2, 4}) {
        for (int length = multiple; length <= 300; length += multiple) {
            for (int tile : {0, 16, 32, 50, 64, 128}) {
                for (int pad : {0, 5, 10, 16}) {
                    const auto spans = plan_tiles(length, tile, pad, multiple);
                    ASSERT_FALSE(spans.empty());
                    int expected_begin = 0;
                    const int window = spans[0].window_end - spans[0].window_begin;
                    for (const TileSpan& s : spans) {
                        ASSERT_EQ(s.core_begin, expected_begin);
                        ASSERT_LT(s.core_begin, s.core_end);
                        expected_begin = s.core_end;
                        // One window size for all tiles: one plan.
                        ASSERT_EQ(s.window_end - s.window_begin, window);
                        ASSERT_EQ(window % multiple, 0);
                        ASSERT_EQ(s.window_begin % multiple, 0);
                        ASSERT_GE(s.window_begin, 0);
                        ASSERT_LE(s.window_end, length);
                        // Context: pad pixels on each side unless the image ends there.
                        ASSERT_LE(s.window_begin, std::max(0, s.core_begin - pad));
                        ASSERT_GE(s.window_end, std::min(length, s.core_end + pad));
                    }
                    ASSERT_EQ(expected_begin, length);
                }
            }
        }
    }
}

TEST(Tiling, RejectsBadGeometry) {
    EXPECT_THROW(plan_tiles(0, 16, 4, 1), core::Error);
    EXPECT_THROW(plan_tiles(10, 16, 4, 4), core::Error);  // length not a multiple
}

// core::reflect_index: the pipeline's pre-pad and the tile kernels' edge rule.
TEST(Tiling, ReflectIndexMatchesNumpyReflect) {
    using core::reflect_index;
    // numpy.pad([0,1,2,3], 5, "reflect") -> 1 2 3 2 1 | 0 1 2 3 | 2 1 0 1 2
    const int want[] = {1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2};
    for (int i = -5; i < 9; ++i)
        EXPECT_EQ(reflect_index(i, 4), want[i + 5]) << i;
    // numpy.pad([0,1], 3, "reflect") -> 1 0 1 | 0 1 | 0 1 0
    const int want2[] = {1, 0, 1, 0, 1, 0, 1, 0};
    for (int i = -3; i < 5; ++i)
        EXPECT_EQ(reflect_index(i, 2), want2[i + 3]) << i;
    // Periodic for any distance (period 2 (n - 1)), in range for every n.
    for (int n = 2; n <= 9; ++n) {
        for (int i = -60; i <= 60; ++i) {
            EXPECT_EQ(reflect_index(i, n), reflect_index(i + 2 * (n - 1), n)) << i << " " << n;
            EXPECT_EQ(reflect_index(i, n), reflect_index(-i, n)) << i << " " << n;
            EXPECT_TRUE(reflect_index(i, n) >= 0 && reflect_index(i, n) < n) << i << " " << n;
        }
    }
    // One pixel reflects to itself; an empty axis gives 0 rather than dividing by zero.
    EXPECT_EQ(reflect_index(-3, 1), 0);
    EXPECT_EQ(reflect_index(7, 1), 0);
    EXPECT_EQ(reflect_index(0, 0), 0);
    EXPECT_EQ(reflect_index(-5, 0), 0);
}

TEST(Tiling, ReplicatePadRepeatsTheEdges) {
    FloatImage img(2, 3, 1);
    img.data = {1, 2, 3, 4, 5, 6};
    const FloatImage p = replicate_pad(img, 2, 1, 1, 3);
    ASSERT_EQ(p.h, 5);
    ASSERT_EQ(p.w, 7);
    const float want[5][7] = {{1, 1, 2, 3, 3, 3, 3},
                              {1, 1, 2, 3, 3, 3, 3},
                              {1, 1, 2, 3, 3, 3, 3},
                              {4, 4, 5, 6, 6, 6, 6},
                              {4, 4, 5, 6, 6, 6, 6}};
    for (int y = 0; y < 5; ++y)
        for (int x = 0; x < 7; ++x)
            EXPECT_EQ(*p.pixel(y, x), want[y][x]) << y << " " << x;
}

TEST(Tiling, ReflectPadAndCrop) {
    FloatImage img(2, 3, 1);
    for (int i = 0; i < 6; ++i)
        img.data[static_cast<size_t>(i)] = static_cast<float>(i);
    const FloatImage p = reflect_pad(img, 1, 1, 2, 0);
    ASSERT_EQ(p.h, 4);
    ASSERT_EQ(p.w, 5);
    // Row -1 reflects to row 1 ([3 4 5]); columns -2,-1 reflect to 2,1.
    EXPECT_EQ(p.pixel(0, 0)[0], 5.0f);
    EXPECT_EQ(p.pixel(0, 1)[0], 4.0f);
    EXPECT_EQ(p.pixel(1, 2)[0], 0.0f);
    const FloatImage c = crop(p, 1, 2, 2, 3);
    EXPECT_EQ(c.data, img.data);
}

}  // namespace
}  // namespace kiln::engine
