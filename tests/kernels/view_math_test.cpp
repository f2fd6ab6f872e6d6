// Channel-view index maps, vector plans (128-bit chunks + scalar tails) and launch shapes:
// the traversal every elementwise kernel does is replayed on the CPU and must touch each
// element of its views exactly once, with the right channel, and nothing else.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/view_math.h"

namespace kiln::kernels {
namespace {

TEST(ViewMath, CeilDiv) {
    EXPECT_EQ(ceil_div(0, 8), 0);
    EXPECT_EQ(ceil_div(1, 8), 1);
    EXPECT_EQ(ceil_div(8, 8), 1);
    EXPECT_EQ(ceil_div(9, 8), 2);
    EXPECT_EQ(ceil_div(int64_t{1} << 40, 256), int64_t{1} << 32);
}

TEST(ViewMath, OffsetIsNhwcWithChannelSlice) {
    const ViewDesc v{5, 7, 3, 11, 4};
    for (int y = 0; y < v.h; ++y)
        for (int x = 0; x < v.w; ++x)
            for (int ch = 0; ch < v.c; ++ch) {
                EXPECT_EQ(v.offset(y, x, ch), (y * 7 + x) * 11 + 4 + ch);
                EXPECT_EQ(v.pixel_offset(y * 7 + x, ch), v.offset(y, x, ch));
            }
    EXPECT_FALSE(v.packed());
    EXPECT_TRUE((ViewDesc{5, 7, 11, 11, 0}.packed()));
    EXPECT_FALSE((ViewDesc{5, 7, 8, 11, 0}.packed()));
}

// Replays a kernel's walk over a plan for one view; counts touches per element.
void replay(const ViewDesc& v, const VecPlan& plan, std::vector<int>& touches) {
    auto touch = [&](int64_t row, int64_t col) {
        const int64_t off = plan_offset(v, plan, row, col);
        ASSERT_GE(off, 0);
        ASSERT_LT(off, static_cast<int64_t>(touches.size()));
        ++touches[static_cast<size_t>(off)];
        // The channel the kernel uses for per-channel parameters is the element's channel.
        const int64_t in_pixel = off % v.c_total - v.c_offset;
        ASSERT_EQ(plan_channel(v, plan, col), in_pixel);
    };
    for (int64_t k = 0; k < plan.chunks(); ++k) {
        for (int i = 0; i < plan.vec; ++i)
            touch(plan.chunk_row(k), plan.chunk_col(k) + i);
        // A vector chunk must be aligned inside the buffer.
        ASSERT_EQ(plan_offset(v, plan, plan.chunk_row(k), plan.chunk_col(k)) % plan.vec, 0);
    }
    for (int t = 0; t < plan.tail; ++t)
        touch(0, plan.tail_start() + t);
}

void check_cover(const ViewDesc& v, const VecPlan& plan) {
    std::vector<int> touches(static_cast<size_t>(v.pixels() * v.c_total), 0);
    replay(v, plan, touches);
    for (int64_t p = 0; p < v.pixels(); ++p)
        for (int ch = 0; ch < v.c_total; ++ch) {
            const bool inside = ch >= v.c_offset && ch < v.c_offset + v.c;
            ASSERT_EQ(touches[static_cast<size_t>(p * v.c_total + ch)], inside ? 1 : 0)
                << "pixel " << p << " ch " << ch << " view c " << v.c << " of " << v.c_total << "+"
                << v.c_offset << " vec " << plan.vec;
        }
}

TEST(ViewMath, PackedViewsWalkFlatWithVectorsAndTail) {
    for (int c : {1, 3, 8, 13, 64}) {
        for (int w : {1, 5, 7, 32}) {
            const ViewDesc v{3, w, c, c, 0};
            const uintptr_t addr = 4096;
            const VecPlan plan = plan_vectors(&v, &addr, 1);
            EXPECT_EQ(plan.rows, 1);
            EXPECT_EQ(plan.row_len, 3 * w * c);
            if (plan.row_len >= kHalfVector) {
                EXPECT_EQ(plan.vec, kHalfVector);
                EXPECT_EQ(plan.tail, plan.row_len % kHalfVector);
            }
            check_cover(v, plan);
        }
    }
}

TEST(ViewMath, SlicedViewsWalkPerPixel) {
    // Aligned slice: vectors. Misaligned offset, width or stride: scalar.
    const uintptr_t addr = 256;
    struct C {
        ViewDesc v;
        int vec;
    };
    for (const C& tc : {C{{4, 6, 32, 96, 64}, 8}, C{{4, 6, 32, 96, 0}, 8}, C{{4, 6, 32, 96, 4}, 1},
                        C{{4, 6, 12, 96, 8}, 1}, C{{4, 6, 8, 12, 0}, 1}, C{{2, 3, 3, 8, 5}, 1}}) {
        const VecPlan plan = plan_vectors(&tc.v, &addr, 1);
        EXPECT_EQ(plan.rows, tc.v.pixels());
        EXPECT_EQ(plan.vec, tc.vec) << tc.v.c << " " << tc.v.c_total << " " << tc.v.c_offset;
        EXPECT_EQ(plan.tail, 0);
        check_cover(tc.v, plan);
    }
}

TEST(ViewMath, MisalignedAddressFallsBackToScalar) {
    const ViewDesc v{4, 4, 16, 16, 0};
    const uintptr_t aligned = 1024, misaligned = 1026;
    EXPECT_EQ(plan_vectors(&v, &aligned, 1).vec, kHalfVector);
    EXPECT_EQ(plan_vectors(&v, &misaligned, 1).vec, 1);
    const ViewDesc both[2] = {v, v};
    const uintptr_t addrs[2] = {aligned, misaligned};
    EXPECT_EQ(plan_vectors(both, addrs, 2).vec, 1);
}

TEST(ViewMath, MixedPackedAndSlicedViewsAgreeOnEveryElement) {
    // Residual adds read views of other buffers: the plan must map the same (row, col) to
    // the same (pixel, channel) in each.
    std::mt19937 rng(3);
    for (int trial = 0; trial < 200; ++trial) {
        const int h = 1 + static_cast<int>(rng() % 5), w = 1 + static_cast<int>(rng() % 9);
        const int c = 1 + static_cast<int>(rng() % 40);
        const int extra = static_cast<int>(rng() % 3) * 8;
        const int off = extra ? static_cast<int>(rng() % (extra + 1)) : 0;
        const ViewDesc views[2] = {{h, w, c, c, 0}, {h, w, c, c + extra, off}};
        const uintptr_t addrs[2] = {512, 768};
        const VecPlan plan = plan_vectors(views, addrs, 2);
        check_cover(views[0], plan);
        check_cover(views[1], plan);
        for (int64_t k = 0; k < plan.chunks(); ++k) {
            const int64_t r = plan.chunk_row(k), col = plan.chunk_col(k);
            const int64_t a = plan_offset(views[0], plan, r, col);
            const int64_t b = plan_offset(views[1], plan, r, col);
            ASSERT_EQ(a / c, b / views[1].c_total);                      // same pixel
            ASSERT_EQ(a % c, b % views[1].c_total - views[1].c_offset);  // same channel
        }
    }
}

TEST(ViewMath, Launch1D) {
    EXPECT_EQ(launch_1d(0, 256, kMaxBlocks).grid, 0u);
    Launch1D l = launch_1d(1, 256, kMaxBlocks);
    EXPECT_EQ(l.grid, 1u);
    EXPECT_EQ(l.block, 256u);
    l = launch_1d(257, 256, kMaxBlocks);
    EXPECT_EQ(l.grid, 2u);
    l = launch_1d(int64_t{1} << 40, 256, kMaxBlocks);  // grid-stride past the cap
    EXPECT_EQ(l.grid, static_cast<unsigned>(kMaxBlocks));
    for (int64_t n : {1, 255, 256, 1000, 123457})
        EXPECT_GE(static_cast<int64_t>(launch_1d(n, 256, kMaxBlocks).grid) * 256, n);
}

TEST(ViewMath, LinearAlignmentIsTheLargestCommonPowerOfTwo) {
    EXPECT_EQ(linear_alignment(0x1000, 64), 128u);   // 64 halves = 128 bytes per column
    EXPECT_EQ(linear_alignment(0x1000, 320), 128u);  // 640 bytes: 128 divides it, 256 not
    EXPECT_EQ(linear_alignment(0x1000, 512), 256u);  // capped at 256
    EXPECT_EQ(linear_alignment(0x1006, 64), 2u);     // a channel offset of 3 halves
    EXPECT_EQ(linear_alignment(0x1010, 27), 2u);     // odd leading dimension
    EXPECT_EQ(linear_alignment(0x1010, 40), 16u);
}

}  // namespace
}  // namespace kiln::kernels
