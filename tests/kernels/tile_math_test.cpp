// Tile geometry and blend weights (kernels/tile_math.h) on the pipeline's own tile plans
// (engine/pipeline/tiling.h), and the tile kernels' per-element code (kernels/tile_body.h) run
// on the CPU through the kernels' walk: gather reproduces the pipeline's reflect-padded
// windows, gather + identity model + scatter reproduces the image (core-only: exactly;
// blended: to fp32 rounding), and blending constant tiles gives the constant.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/index_math.h"
#include "engine/pipeline/tiling.h"
#include "kernels/tile_body.h"
#include "kernels/tile_math.h"

namespace kiln::kernels {
namespace {

std::vector<TileAxis> axes_of(const std::vector<engine::TileSpan>& spans) {
    std::vector<TileAxis> out;
    for (const engine::TileSpan& s : spans)
        out.push_back({s.core_begin, s.core_end, s.window_begin, s.window_end});
    return out;
}

std::vector<BlendAxis> blend_of(const std::vector<TileAxis>& tiles,
                                int scale,
                                int blend,
                                int* smallest = nullptr) {
    std::vector<BlendAxis> out(tiles.size());
    const int s =
        plan_blend_axes(tiles.data(), static_cast<int>(tiles.size()), scale, blend, out.data());
    if (smallest)
        *smallest = s;
    return out;
}

// The reflect rule itself is core::reflect_index, shared with the pipeline's reflect_pad and
// tested in tests/cpu/tiling_test.cpp; here: the kernels' edge rule applies it (or the clamp)
// outside the image only.
TEST(TileMath, EdgeIndexReflectsOrClampsOutsideTheImage) {
    for (int n = 1; n <= 9; ++n) {
        for (int i = -60; i <= 60; ++i) {
            const int r = tile_edge_index(i, n, TileEdge::REFLECT);
            ASSERT_EQ(r, core::reflect_index(i, n)) << i << " " << n;
            ASSERT_TRUE(r >= 0 && r < n) << i << " " << n;
            const int c = tile_edge_index(i, n, TileEdge::CLAMP);
            ASSERT_EQ(c, std::clamp(i, 0, n - 1));
        }
    }
    EXPECT_EQ(tile_edge_index(-1, 5, TileEdge::REFLECT), 1);  // edge not repeated
    EXPECT_EQ(tile_edge_index(5, 5, TileEdge::REFLECT), 3);
    EXPECT_EQ(tile_edge_index(-100, 1, TileEdge::REFLECT), 0);
}

struct AxisCase {
    int length, tile, pad, multiple, scale, blend;
};

// Lengths odd and even, tiles smaller than, equal to and larger than the image, 1-pixel
// images, last cores shorter than the others, blends from none to more than the context.
std::vector<AxisCase> axis_cases() {
    std::vector<AxisCase> cases;
    for (const int length : {1, 2, 3, 7, 8, 17, 31, 64, 100, 257})
        for (const int tile : {0, 1, 3, 5, 8, 16, 32, 300})
            for (const int pad : {0, 1, 2, 4, 10})
                for (const int multiple : {1, 2, 4})
                    for (const int scale : {1, 2, 4})
                        for (const int blend : {0, 1, 2, 3, 8, 16, 1000}) {
                            if (length % multiple == 0)
                                cases.push_back({length, tile, pad, multiple, scale, blend});
                        }
    return cases;
}

TEST(TileMath, WindowsCoverCoresPartitionWeightsSumToOne) {
    int checked = 0;
    for (const AxisCase& t : axis_cases()) {
        const auto tiles = axes_of(engine::plan_tiles(t.length, t.tile, t.pad, t.multiple));
        int smallest = -1;
        const auto blend = blend_of(tiles, t.scale, t.blend, &smallest);
        const int n = static_cast<int>(tiles.size());
        ASSERT_GE(n, 1);
        // Cores partition [0, length); windows lie in the image and hold their core.
        int expect_begin = 0;
        for (const TileAxis& a : tiles) {
            ASSERT_EQ(a.core_begin, expect_begin);
            ASSERT_LT(a.core_begin, a.core_end);
            ASSERT_LE(a.window_begin, a.core_begin);
            ASSERT_GE(a.window_end, a.core_end);
            ASSERT_GE(a.window_begin, 0);
            ASSERT_LE(a.window_end, t.length);
            expect_begin = a.core_end;
        }
        ASSERT_EQ(expect_begin, t.length);
        // Each tile's support lies in its own output window.
        for (int i = 0; i < n; ++i) {
            const BlendAxis& b = blend[static_cast<size_t>(i)];
            ASSERT_LE(b.lo_begin, b.lo_end);
            ASSERT_LE(b.lo_end, b.hi_begin);
            ASSERT_LE(b.hi_begin, b.hi_end);
            ASSERT_GE(b.lo_begin, tiles[static_cast<size_t>(i)].window_begin * t.scale);
            ASSERT_LE(b.hi_end, tiles[static_cast<size_t>(i)].window_end * t.scale);
            ASSERT_EQ(b.window_begin, tiles[static_cast<size_t>(i)].window_begin * t.scale);
        }
        // Weights: in [0, 1], at most two tiles per output pixel, sum 1; blend 0 is exact.
        for (int x = 0; x < t.length * t.scale; ++x) {
            float sum = 0.0f;
            int covering = 0;
            for (const BlendAxis& b : blend) {
                const float w = blend_weight(b, x);
                ASSERT_GE(w, 0.0f);
                ASSERT_LE(w, 1.0f);
                covering += w > 0.0f;
                sum += w;
            }
            ASSERT_LE(covering, 2);
            ASSERT_GE(covering, 1);
            if (t.blend == 0)
                ASSERT_EQ(sum, 1.0f);
            else
                ASSERT_NEAR(sum, 1.0f, 1e-6f) << x;
        }
        // Nothing outside the output.
        for (const BlendAxis& b : blend) {
            ASSERT_EQ(blend_weight(b, -1), 0.0f);
            ASSERT_EQ(blend_weight(b, t.length * t.scale), 0.0f);
        }
        if (n == 1)
            ASSERT_EQ(smallest, 0);
        else
            ASSERT_LE(smallest, std::max(t.blend, 0));
        ++checked;
    }
    EXPECT_EQ(checked, 14280);  // every case of axis_cases()
}

TEST(TileMath, RampIsLinearAndUncappedWhenContextAllows) {
    // 4 tiles of 32 with 8 pixels of context, x2: a 16-pixel ramp fits everywhere.
    const auto tiles = axes_of(engine::plan_tiles(128, 32, 8, 1));
    ASSERT_EQ(tiles.size(), 4u);
    int smallest = 0;
    const auto blend = blend_of(tiles, 2, 16, &smallest);
    EXPECT_EQ(smallest, 16);
    // Boundary at input 64 = output 128: ramp [120, 136), tile 1 falls and tile 2 rises by
    // 1/16 a pixel.
    EXPECT_EQ(blend[1].hi_begin, 120);
    EXPECT_EQ(blend[1].hi_end, 136);
    EXPECT_EQ(blend[2].lo_begin, 120);
    EXPECT_EQ(blend[2].lo_end, 136);
    for (int x = 120; x < 136; ++x) {
        EXPECT_FLOAT_EQ(blend_weight(blend[2], x), (static_cast<float>(x - 120) + 0.5f) / 16.0f);
        EXPECT_FLOAT_EQ(blend_weight(blend[1], x) + blend_weight(blend[2], x), 1.0f);
    }
    EXPECT_EQ(blend_weight(blend[1], 119), 1.0f);
    EXPECT_EQ(blend_weight(blend[2], 119), 0.0f);
    EXPECT_EQ(blend_weight(blend[1], 136), 0.0f);
    EXPECT_EQ(blend_weight(blend[2], 136), 1.0f);
    EXPECT_EQ(blend_weight(blend[0], 0), 1.0f);  // image edges: no ramp
    EXPECT_EQ(blend_weight(blend[3], 255), 1.0f);
    // Context caps the ramp: pad 2 at x1 leaves 2 output pixels each side.
    const auto tight = axes_of(engine::plan_tiles(128, 32, 2, 1));
    blend_of(tight, 1, 16, &smallest);
    EXPECT_EQ(smallest, 4);
}

// --- the kernels' per-element code on the CPU ---------------------------------------------

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// An NHWC image, fp32 or fp16 storage, c channels at c_offset of c_total.
struct HostImage {
    std::vector<float> f;
    std::vector<uint16_t> h;
    ViewDesc desc;
    bool half;

    HostImage(int height, int width, int c, bool is_half, int c_total = 0, int c_offset = 0)
        : desc{height, width, c, c_total ? c_total : c, c_offset}, half(is_half) {
        const size_t n = static_cast<size_t>(height) * width * desc.c_total;
        if (half)
            h.assign(n, core::float_to_half(kNaN));
        else
            f.assign(n, kNaN);
    }
    TileImage view() {
        TileImage t;
        t.desc = desc;
        if (half)
            t.half = h.data();
        else
            t.f32 = f.data();
        return t;
    }
    float at(int y, int x, int ch) const {
        const int64_t o = desc.offset(y, x, ch);
        return half ? core::half_to_float(h[static_cast<size_t>(o)]) : f[static_cast<size_t>(o)];
    }
    void set(int y, int x, int ch, float v) {
        const int64_t o = desc.offset(y, x, ch);
        if (half)
            h[static_cast<size_t>(o)] = core::float_to_half(v);
        else
            f[static_cast<size_t>(o)] = v;
    }
    void fill(float v) {
        for (int y = 0; y < desc.h; ++y)
            for (int x = 0; x < desc.w; ++x)
                for (int ch = 0; ch < desc.c; ++ch)
                    set(y, x, ch, v);
    }
};

// The pipeline's geometry for an h x w image (engine/pipeline/upscaler.cpp): reflect pre-pad,
// bottom/right pad to the multiple, tile plans per axis.
struct Geometry {
    int pre, ph, pw;
    std::vector<TileAxis> rows, cols;
};

Geometry pipeline_geometry(int h, int w, int tile, int pad, int pre, int multiple) {
    auto up = [](int v, int m) { return (v + m - 1) / m * m; };
    Geometry g;
    g.pre = pre;
    g.ph = up(h + 2 * pre, multiple);
    g.pw = up(w + 2 * pre, multiple);
    g.rows = axes_of(engine::plan_tiles(g.ph, tile, pad, multiple));
    g.cols = axes_of(engine::plan_tiles(g.pw, tile, pad, multiple));
    return g;
}

struct PipelineCase {
    int h, w, c, tile, pad, pre, multiple, scale, blend;
    bool tile_half, out_half;
};

// Runs gather -> identity model (nearest upsample by `scale`, or `constant_per_tile`) ->
// scatter over every tile and returns the output (h * s x w * s).
HostImage run_tiles(const HostImage& image_in,
                    const PipelineCase& t,
                    bool constant_per_tile,
                    std::vector<float>* tile_constants = nullptr) {
    HostImage image = image_in;
    const Geometry g = pipeline_geometry(t.h, t.w, t.tile, t.pad, t.pre, t.multiple);
    const auto by = blend_of(g.rows, t.scale, t.blend);
    const auto bx = blend_of(g.cols, t.scale, t.blend);
    const bool accumulate = t.blend > 0;
    HostImage out(t.h * t.scale, t.w * t.scale, t.c, accumulate ? false : t.out_half);
    if (accumulate)
        out.fill(0.0f);
    int index = 0;
    for (size_t i = 0; i < g.rows.size(); ++i) {
        for (size_t j = 0; j < g.cols.size(); ++j) {
            const TileAxis& ry = g.rows[i];
            const TileAxis& rx = g.cols[j];
            const int wh = ry.window_end - ry.window_begin, ww = rx.window_end - rx.window_begin;
            // The tile buffer is a channel slice of a wider buffer.
            HostImage tile(wh, ww, t.c, t.tile_half, t.c + 3, 2);
            const TileGatherParams gp =
                make_tile_gather_params(image.view(), tile.view(), ry.window_begin - g.pre,
                                        rx.window_begin - g.pre, TileEdge::REFLECT);
            EXPECT_EQ(tile_gather_problem(gp), nullptr);
            tile_gather_host(gp);
            HostImage result(wh * t.scale, ww * t.scale, t.c, t.tile_half);
            const float k = static_cast<float>(index % 7) * 0.25f - 0.5f;
            if (tile_constants)
                tile_constants->push_back(k);
            for (int y = 0; y < result.desc.h; ++y)
                for (int x = 0; x < result.desc.w; ++x)
                    for (int ch = 0; ch < t.c; ++ch)
                        result.set(y, x, ch,
                                   constant_per_tile ? k : tile.at(y / t.scale, x / t.scale, ch));
            const TileScatterParams sp = make_tile_scatter_params(
                result.view(), out.view(), by[i], bx[j], g.pre * t.scale, g.pre * t.scale,
                accumulate ? TileScatterMode::ACCUMULATE : TileScatterMode::COPY);
            EXPECT_EQ(tile_scatter_problem(sp), nullptr);
            tile_scatter_host(sp);
            ++index;
        }
    }
    return out;
}

HostImage random_image(int h, int w, int c, uint32_t seed) {
    HostImage img(h, w, c, false);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float& v : img.f)
        v = dist(rng);
    return img;
}

std::vector<PipelineCase> pipeline_cases() {
    std::vector<PipelineCase> cases;
    // h, w, c, tile, pad, pre, multiple, scale, blend, tile fp16, out fp16
    const PipelineCase base[] = {
        {1, 1, 3, 0, 0, 0, 1, 1, 0, false, false},    // 1-pixel image, one tile
        {1, 1, 3, 4, 2, 1, 1, 2, 2, true, false},     // 1 pixel, pre-pad reflects to itself
        {37, 23, 3, 8, 4, 2, 1, 2, 4, true, false},   // odd sizes, many tiles
        {37, 23, 3, 8, 4, 5, 4, 4, 8, false, false},  // multiple 4, short last tiles
        {16, 16, 1, 64, 4, 0, 1, 2, 8, true, false},  // tile larger than the image
        {19, 40, 4, 7, 3, 3, 2, 1, 3, false, true},   // odd blend, fp16 output (copy)
        {33, 9, 3, 5, 1, 1, 1, 3, 100, true, false},  // blend capped by the context
    };
    for (PipelineCase c : base) {
        cases.push_back(c);
        c.blend = 0;
        cases.push_back(c);  // the same geometry core-only
    }
    return cases;
}

TEST(TileBody, GatherReadsThePipelinesPaddedWindows) {
    for (const PipelineCase& t : pipeline_cases()) {
        HostImage img = random_image(t.h, t.w, t.c, 7);
        const Geometry g = pipeline_geometry(t.h, t.w, t.tile, t.pad, t.pre, t.multiple);
        for (const TileAxis& ry : g.rows) {
            for (const TileAxis& rx : g.cols) {
                const int wh = ry.window_end - ry.window_begin;
                const int ww = rx.window_end - rx.window_begin;
                HostImage tile(wh, ww, t.c, false);
                tile_gather_host(
                    make_tile_gather_params(img.view(), tile.view(), ry.window_begin - g.pre,
                                            rx.window_begin - g.pre, TileEdge::REFLECT));
                // engine::reflect_pad (float_image.cpp) maps padded (y, x) to these pixels.
                for (int y = 0; y < wh; ++y)
                    for (int x = 0; x < ww; ++x)
                        for (int ch = 0; ch < t.c; ++ch) {
                            const int sy = core::reflect_index(ry.window_begin + y - g.pre, t.h);
                            const int sx = core::reflect_index(rx.window_begin + x - g.pre, t.w);
                            ASSERT_EQ(tile.at(y, x, ch), img.at(sy, sx, ch));
                        }
            }
        }
    }
}

TEST(TileBody, GatherClampsAndWindowsLargerThanTheImage) {
    HostImage img = random_image(3, 2, 2, 3);
    HostImage tile(7, 6, 2, true);
    tile_gather_host(make_tile_gather_params(img.view(), tile.view(), -2, -3, TileEdge::CLAMP));
    for (int y = 0; y < 7; ++y)
        for (int x = 0; x < 6; ++x)
            for (int ch = 0; ch < 2; ++ch)
                ASSERT_EQ(tile.at(y, x, ch),
                          core::half_to_float(core::float_to_half(
                              img.at(std::clamp(y - 2, 0, 2), std::clamp(x - 3, 0, 1), ch))));
}

TEST(TileBody, IdentityTilesReproduceTheImage) {
    for (const PipelineCase& t : pipeline_cases()) {
        SCOPED_TRACE(::testing::Message() << t.h << "x" << t.w << " tile " << t.tile << " pad "
                                          << t.pad << " s " << t.scale << " blend " << t.blend);
        HostImage img = random_image(t.h, t.w, t.c, 11);
        const HostImage out = run_tiles(img, t, false);
        for (int y = 0; y < out.desc.h; ++y)
            for (int x = 0; x < out.desc.w; ++x)
                for (int ch = 0; ch < t.c; ++ch) {
                    float expect = img.at(y / t.scale, x / t.scale, ch);
                    if (t.tile_half)
                        expect = core::half_to_float(core::float_to_half(expect));
                    if (t.blend == 0 && t.out_half)
                        expect = core::half_to_float(core::float_to_half(expect));
                    const float got = out.at(y, x, ch);
                    if (t.blend == 0)
                        ASSERT_EQ(got, expect) << y << " " << x;  // exact copy, every pixel
                    else
                        ASSERT_NEAR(got, expect, 4e-7f) << y << " " << x;
                }
    }
}

TEST(TileBody, BlendingConstantTilesGivesTheConstant) {
    for (PipelineCase t : pipeline_cases()) {
        if (t.blend == 0)
            continue;
        HostImage img = random_image(t.h, t.w, t.c, 5);
        // Every tile outputs 0.7: the blend is 0.7 everywhere.
        HostImage one = img;
        one.fill(0.7f);
        const HostImage out = run_tiles(one, t, false);
        for (float v : out.f)
            ASSERT_NEAR(v, t.tile_half ? core::half_to_float(core::float_to_half(0.7f)) : 0.7f,
                        3e-7f);
        // Tiles of different constants: every pixel is a convex combination of them.
        std::vector<float> ks;
        const HostImage mixed = run_tiles(img, t, true, &ks);
        const float lo = *std::min_element(ks.begin(), ks.end());
        const float hi = *std::max_element(ks.begin(), ks.end());
        for (float v : mixed.f) {
            ASSERT_GE(v, lo - 1e-6f);
            ASSERT_LE(v, hi + 1e-6f);
        }
    }
}

TEST(TileBody, ScatterRejectsATileThatDoesNotCoverItsSupport) {
    HostImage small(4, 4, 3, true), out(16, 16, 3, false);
    BlendAxis a;
    a.window_begin = 0;
    a.lo_begin = a.lo_end = 0;
    a.hi_begin = a.hi_end = 8;  // support 8 wide, tile output 4
    const TileScatterParams p =
        make_tile_scatter_params(small.view(), out.view(), a, a, 0, 0, TileScatterMode::COPY);
    EXPECT_NE(tile_scatter_problem(p), nullptr);
    const TileScatterParams half_acc =
        make_tile_scatter_params(small.view(), small.view(), {0, 0, 0, 4, 4}, {0, 0, 0, 4, 4}, 0, 0,
                                 TileScatterMode::ACCUMULATE);
    EXPECT_NE(tile_scatter_problem(half_acc), nullptr);  // fp16 accumulator
    TileImage both = small.view();
    both.f32 = out.f.data();
    EXPECT_NE(tile_image_problem(both), nullptr);
}

}  // namespace
}  // namespace kiln::kernels
