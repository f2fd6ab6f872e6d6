// Nearest, bilinear and pixel (un)shuffle index maps against naive PyTorch definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/resample_math.h"

namespace kiln::kernels {
namespace {

TEST(ResampleIndex, NearestIsFloorDivision) {
    for (int f : {1, 2, 3, 4})
        for (int d = 0; d < 40; ++d)
            EXPECT_EQ(nearest_source(d, f), static_cast<int>(std::floor(d / double(f))));
}

TEST(ResampleIndex, BilinearMatchesPyTorchAlignCornersFalse) {
    for (int f : {1, 2, 3, 4}) {
        for (int in : {1, 2, 5, 17}) {
            for (int d = 0; d < in * f; ++d) {
                // PyTorch: src = max((d + 0.5) / f - 0.5, 0); i0 = floor(src) (<= in-1);
                // i1 = min(i0 + 1, in - 1); lambda = src - i0.
                const double src = std::max((d + 0.5) / f - 0.5, 0.0);
                const int i0 = std::min(static_cast<int>(std::floor(src)), in - 1);
                const int i1 = std::min(i0 + 1, in - 1);
                const LinearTaps t = linear_taps(d, in, f);
                EXPECT_EQ(t.i0, i0) << f << " " << in << " " << d;
                EXPECT_EQ(t.i1, i1);
                EXPECT_NEAR(t.w1, src - i0, 4e-6);  // fp32 arithmetic, as the CPU op
                EXPECT_GE(t.w1, 0.0f);
                EXPECT_LE(t.w1, 1.0f);
            }
        }
    }
}

TEST(ResampleIndex, ResizeBilinearMatchesPyTorchAlignCornersFalse) {
    for (int in : {1, 2, 3, 5, 6, 17, 64}) {
        for (int out : {1, 2, 4, 6, 7, 16, 23, 29, 64, 255}) {
            for (int d = 0; d < out; ++d) {
                // PyTorch: src = max((d + 0.5) * in / out - 0.5, 0); i0 = floor(src) (<= in-1);
                // i1 = min(i0 + 1, in - 1); lambda = src - i0.
                const double src = std::max((d + 0.5) * in / out - 0.5, 0.0);
                const int i0 = std::min(static_cast<int>(std::floor(src)), in - 1);
                const int i1 = std::min(i0 + 1, in - 1);
                const LinearTaps t = resize_linear_taps(d, in, out);
                ASSERT_EQ(t.i0, i0) << in << " -> " << out << " at " << d;
                ASSERT_EQ(t.i1, i1);
                ASSERT_NEAR(t.w1, src - i0, 2e-5);  // fp32 arithmetic, as the CPU op
                ASSERT_GE(t.w1, 0.0f);
                ASSERT_LT(t.w1, 1.0f);
            }
        }
    }
    // An integer upsample takes the same taps as the factor's (ESA at 2x: the two ops agree).
    for (int f : {2, 3, 4})
        for (int in : {1, 5, 17})
            for (int d = 0; d < in * f; ++d) {
                const LinearTaps a = resize_linear_taps(d, in, in * f);
                const LinearTaps b = linear_taps(d, in, f);
                EXPECT_EQ(a.i0, b.i0);
                EXPECT_EQ(a.i1, b.i1);
                EXPECT_NEAR(a.w1, b.w1, 1e-6);
            }
}

TEST(ResampleIndex, BilinearIsExactOnALinearRamp) {
    // Interior outputs of a linear ramp are on the ramp.
    const int in = 9, f = 4;
    for (int d = f; d < (in - 1) * f; ++d) {
        const LinearTaps t = linear_taps(d, in, f);
        const double v = t.i0 * (1.0 - t.w1) + t.i1 * t.w1;
        EXPECT_NEAR(v, (d + 0.5) / f - 0.5, 1e-6);
    }
}

TEST(ResampleIndex, PixelShuffleMatchesPyTorchAndUnshuffleInvertsIt) {
    const int h = 3, w = 4, c = 5;
    for (int r : {1, 2, 3}) {
        const int cin = c * r * r;
        std::vector<int> in(static_cast<size_t>(h * w * cin));
        for (size_t k = 0; k < in.size(); ++k)
            in[k] = static_cast<int>(k);
        // PyTorch: out[ch][y*r+i][x*r+j] = in[ch*r*r + i*r + j][y][x] (NCHW names).
        std::vector<int> out(in.size());
        for (int y = 0; y < h * r; ++y)
            for (int x = 0; x < w * r; ++x)
                for (int ch = 0; ch < c; ++ch) {
                    const int sc = shuffle_source_channel(ch, y % r, x % r, r);
                    EXPECT_EQ(sc, ch * r * r + (y % r) * r + (x % r));
                    out[static_cast<size_t>((y * w * r + x) * c + ch)] =
                        in[static_cast<size_t>(((y / r) * w + x / r) * cin + sc)];
                }
        // Unshuffle of the shuffled tensor through unshuffle_source gives back the input.
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int oc = 0; oc < cin; ++oc) {
                    const UnshuffleSource s = unshuffle_source(oc, r);
                    const int v =
                        out[static_cast<size_t>(((y * r + s.i) * w * r + x * r + s.j) * c + s.ch)];
                    ASSERT_EQ(v, in[static_cast<size_t>((y * w + x) * cin + oc)]);
                }
    }
}

}  // namespace
}  // namespace kiln::kernels
