// Tile geometry of the upscale pipeline on the device side, host-device and plain C++ (tested
// on the CPU by tests/kernels/tile_math_test.cpp): the edge rule of a tile window that reaches
// outside its image, and the per-axis linear blend weights of overlapping tile outputs.
//
// Geometry (engine/pipeline/tiling.h, per axis, input coordinates): tile i owns the core
// [core_begin, core_end) (the cores partition the axis) and the model sees the window
// [window_begin, window_end) ⊇ core. Its output covers [window_begin * s, window_end * s) for
// a model of scale s.
//
// Blending (output coordinates): at the boundary b = core_end_i * s = core_begin_{i+1} * s the
// two tiles share a ramp [b - hl, b + hr): tile i+1 weighs (x - (b - hl) + 0.5) / (hl + hr)
// there and tile i one minus that; outside ramps a tile weighs 1 on its core and 0 elsewhere.
// Per axis the weights of the tiles covering x sum to 1 (two tiles at most: ramps are capped
// so that the two ramps of one core never overlap), and the 2-D weight is the product of the
// axes' weights, so the weights of all tiles covering a pixel sum to 1 as well (up to one fp32
// rounding). With blend 0 every ramp is empty: core-only, as the CPU pipeline does.
#pragma once

#include <cstdint>

#include "core/host_device.h"
#include "core/index_math.h"

namespace kiln::kernels {

// How a tile window reads pixels outside the image.
enum class TileEdge : int {
    REFLECT = 0,  // numpy/PyTorch 'reflect' (edge not repeated): the pipeline's pre-pad rule
    CLAMP = 1,    // replicate the edge pixel
};

KILN_HD inline int tile_clamp(int i, int n) {
    return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

// REFLECT is core::reflect_index, the rule of the pipeline's reflect_pad (one definition).
KILN_HD inline int tile_edge_index(int i, int n, TileEdge edge) {
    if (i >= 0 && i < n)
        return i;
    return edge == TileEdge::REFLECT ? core::reflect_index(i, n) : tile_clamp(i, n);
}

// One tile along one axis, input coordinates (the fields of engine::TileSpan).
struct TileAxis {
    int core_begin = 0, core_end = 0;
    int window_begin = 0, window_end = 0;
};

// One tile's weight along one axis, output coordinates: ramp up on [lo_begin, lo_end), 1 on
// [lo_end, hi_begin), ramp down on [hi_begin, hi_end), 0 elsewhere. `window_begin` is where
// the tile's output starts (window_begin * s): output pixel x is the tile's x - window_begin.
struct BlendAxis {
    int window_begin = 0;
    int lo_begin = 0, lo_end = 0;
    int hi_begin = 0, hi_end = 0;
};

// Ramp of the tile after a boundary: (x - begin + 0.5) / (end - begin) in (0, 1).
KILN_HD inline float ramp_up(int x, int begin, int end) {
    return (static_cast<float>(x - begin) + 0.5f) / static_cast<float>(end - begin);
}

// Weight of output coordinate x for this tile (0 outside its support [lo_begin, hi_end)). The
// tile before a boundary computes 1 - (the next tile's ramp) with the same operands.
KILN_HD inline float blend_weight(const BlendAxis& a, int x) {
    if (x < a.lo_begin || x >= a.hi_end)
        return 0.0f;
    if (x < a.lo_end)
        return ramp_up(x, a.lo_begin, a.lo_end);
    if (x >= a.hi_begin)
        return 1.0f - ramp_up(x, a.hi_begin, a.hi_end);
    return 1.0f;
}

// Blend axes of `count` tiles (cores in order, partitioning the axis), scale s, `blend` output
// pixels of overlap wanted per boundary (0: core-only). A boundary's ramp is split hl =
// blend / 2 before and hr = blend - hl after it, each capped by the context the other tile's
// output has on that side, and blend is capped by both adjoining cores (so the ramps of one
// core never overlap). Writes `count` entries to `out`; returns the smallest ramp width used
// at an inner boundary (blend when none was capped; 0 for one tile).
inline int plan_blend_axes(const TileAxis* tiles, int count, int scale, int blend, BlendAxis* out) {
    if (blend < 0)
        blend = 0;
    int smallest = count > 1 ? blend : 0;
    for (int i = 0; i < count; ++i) {
        out[i].window_begin = tiles[i].window_begin * scale;
        out[i].lo_begin = out[i].lo_end = tiles[i].core_begin * scale;
        out[i].hi_begin = out[i].hi_end = tiles[i].core_end * scale;
    }
    for (int i = 0; i + 1 < count; ++i) {
        const TileAxis& l = tiles[i];
        const TileAxis& r = tiles[i + 1];
        const int b = l.core_end * scale;
        int width = blend;
        const int core_l = (l.core_end - l.core_begin) * scale;
        const int core_r = (r.core_end - r.core_begin) * scale;
        width = width < core_l ? width : core_l;
        width = width < core_r ? width : core_r;
        int hl = width / 2;
        int hr = width - hl;
        const int avail_l = b - r.window_begin * scale;  // right tile's output before b
        const int avail_r = l.window_end * scale - b;    // left tile's output after b
        hl = hl < avail_l ? hl : (avail_l > 0 ? avail_l : 0);
        hr = hr < avail_r ? hr : (avail_r > 0 ? avail_r : 0);
        out[i].hi_begin = out[i + 1].lo_begin = b - hl;
        out[i].hi_end = out[i + 1].lo_end = b + hr;
        smallest = hl + hr < smallest ? hl + hr : smallest;
    }
    return smallest;
}

// The rectangle of one tile's output that a scatter writes, in destination coordinates
// (destination pixel (0, 0) is output coordinate (origin_y, origin_x)): the tile's support
// clipped to the destination [0, dst_h) x [0, dst_w). Empty when y_end <= y_begin or
// x_end <= x_begin.
struct ScatterRect {
    int y_begin = 0, y_end = 0, x_begin = 0, x_end = 0;
    KILN_HD int64_t pixels() const {
        return y_end > y_begin && x_end > x_begin
                   ? static_cast<int64_t>(y_end - y_begin) * (x_end - x_begin)
                   : 0;
    }
};

inline ScatterRect scatter_rect(const BlendAxis& ay,
                                const BlendAxis& ax,
                                int origin_y,
                                int origin_x,
                                int dst_h,
                                int dst_w) {
    auto clip = [](int v, int hi) { return v < 0 ? 0 : (v > hi ? hi : v); };
    ScatterRect r;
    r.y_begin = clip(ay.lo_begin - origin_y, dst_h);
    r.y_end = clip(ay.hi_end - origin_y, dst_h);
    r.x_begin = clip(ax.lo_begin - origin_x, dst_w);
    r.x_end = clip(ax.hi_end - origin_x, dst_w);
    return r;
}

}  // namespace kiln::kernels
