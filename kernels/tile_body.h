// Per-element work of the tile kernels (tile.cu), host-device, with their Params and builders:
// gather (a tile window of an image, edge rule outside it, into a tile buffer) and scatter (a
// processed tile's output into the full output: core-only copy, or weighted accumulation with
// the linear overlap weights of kernels/tile_math.h). The CPU tests run this same code through
// the same walk (tests/kernels/tile_math_test.cpp).
//
// Images are NHWC channel views of either fp16 (`half`) or fp32 (`f32`) buffers: exactly one
// of the two pointers is set. One element per thread (these run once per tile and are memory
// bound at a few bytes per pixel; no vector path).
#pragma once

#include <cstdint>

#include "kernels/half_io.h"
#include "kernels/tile_math.h"
#include "kernels/view_math.h"

namespace kiln::kernels {

struct TileImage {
    uint16_t* half = nullptr;
    float* f32 = nullptr;
    ViewDesc desc;

    KILN_HD float load(int64_t off) const {
        if (half) {
            float v[1];
            load_halves<1>(half + off, v);
            return v[0];
        }
        return f32[off];
    }
    KILN_HD void store(int64_t off, float value) const {
        if (half) {
            const float v[1] = {value};
            store_halves<1>(half + off, v);
        } else {
            f32[off] = value;
        }
    }
};

struct TileGatherParams {
    TileImage src;       // the image (h, w: its extent for the edge rule)
    TileImage dst;       // the tile buffer: dst.desc.h x dst.desc.w pixels, src.desc.c channels
    int y0 = 0, x0 = 0;  // image coordinates of the tile's pixel (0, 0); may be outside
    TileEdge edge = TileEdge::REFLECT;

    KILN_HD int64_t work() const { return dst.desc.pixels() * dst.desc.c; }
};

// Element k of the tile buffer (pixel-major, channels fastest).
KILN_HD inline void tile_gather_element(const TileGatherParams& p, int64_t k) {
    const int c = p.dst.desc.c;
    const int64_t pixel = k / c;
    const int ch = static_cast<int>(k - pixel * c);
    const int ty = static_cast<int>(pixel / p.dst.desc.w);
    const int tx = static_cast<int>(pixel - static_cast<int64_t>(ty) * p.dst.desc.w);
    const int sy = tile_edge_index(p.y0 + ty, p.src.desc.h, p.edge);
    const int sx = tile_edge_index(p.x0 + tx, p.src.desc.w, p.edge);
    p.dst.store(p.dst.desc.offset(ty, tx, ch), p.src.load(p.src.desc.offset(sy, sx, ch)));
}

enum class TileScatterMode : int {
    COPY = 0,        // dst = tile where the tile's weight is not 0 (core-only when blend is 0)
    ACCUMULATE = 1,  // dst += weight * tile (dst fp32, zeroed before the first tile)
};

struct TileScatterParams {
    TileImage src;                   // the tile's output (window * s pixels)
    TileImage dst;                   // the full output (or a crop of it at origin_y/x)
    BlendAxis ay, ax;                // this tile's weights (output coordinates)
    int origin_y = 0, origin_x = 0;  // output coordinates of dst's pixel (0, 0)
    ScatterRect rect;                // destination pixels written (the support clipped to dst)
    TileScatterMode mode = TileScatterMode::COPY;

    KILN_HD int64_t work() const { return rect.pixels() * dst.desc.c; }
};

// Element k of the scatter rectangle (pixel-major, channels fastest).
KILN_HD inline void tile_scatter_element(const TileScatterParams& p, int64_t k) {
    const int c = p.dst.desc.c;
    const int rw = p.rect.x_end - p.rect.x_begin;
    const int64_t pixel = k / c;
    const int ch = static_cast<int>(k - pixel * c);
    const int ry = static_cast<int>(pixel / rw);
    const int dy = p.rect.y_begin + ry;
    const int dx = p.rect.x_begin + static_cast<int>(pixel - static_cast<int64_t>(ry) * rw);
    const int oy = p.origin_y + dy, ox = p.origin_x + dx;  // output coordinates
    const float value =
        p.src.load(p.src.desc.offset(oy - p.ay.window_begin, ox - p.ax.window_begin, ch));
    const int64_t d = p.dst.desc.offset(dy, dx, ch);
    if (p.mode == TileScatterMode::COPY) {
        if (blend_weight(p.ay, oy) > 0.0f && blend_weight(p.ax, ox) > 0.0f)
            p.dst.store(d, value);
    } else {
        const float w = blend_weight(p.ay, oy) * blend_weight(p.ax, ox);
        p.dst.f32[d] += w * value;
    }
}

inline TileGatherParams make_tile_gather_params(const TileImage& src,
                                                const TileImage& dst,
                                                int y0,
                                                int x0,
                                                TileEdge edge) {
    TileGatherParams p;
    p.src = src;
    p.dst = dst;
    p.y0 = y0;
    p.x0 = x0;
    p.edge = edge;
    return p;
}

inline TileScatterParams make_tile_scatter_params(const TileImage& src,
                                                  const TileImage& dst,
                                                  const BlendAxis& ay,
                                                  const BlendAxis& ax,
                                                  int origin_y,
                                                  int origin_x,
                                                  TileScatterMode mode) {
    TileScatterParams p;
    p.src = src;
    p.dst = dst;
    p.ay = ay;
    p.ax = ax;
    p.origin_y = origin_y;
    p.origin_x = origin_x;
    p.rect = scatter_rect(ay, ax, origin_y, origin_x, dst.desc.h, dst.desc.w);
    p.mode = mode;
    return p;
}

// Why the parameters are unusable (null when they are fine): one image pointer each, same
// channel count, an fp32 destination for ACCUMULATE, and the tile's output covering every
// pixel the scatter reads.
inline const char* tile_image_problem(const TileImage& t) {
    if ((t.half == nullptr) == (t.f32 == nullptr))
        return "a tile image needs exactly one of half and f32";
    if (t.desc.h < 0 || t.desc.w < 0 || t.desc.c <= 0 || t.desc.c_offset < 0 ||
        t.desc.c_offset + t.desc.c > t.desc.c_total)
        return "bad tile image view";
    return nullptr;
}

inline const char* tile_gather_problem(const TileGatherParams& p) {
    if (const char* why = tile_image_problem(p.src))
        return why;
    if (const char* why = tile_image_problem(p.dst))
        return why;
    if (p.src.desc.c != p.dst.desc.c)
        return "gather: channel counts differ";
    if (p.work() > 0 && (p.src.desc.h <= 0 || p.src.desc.w <= 0))
        return "gather: empty source image";
    return nullptr;
}

inline const char* tile_scatter_problem(const TileScatterParams& p) {
    if (const char* why = tile_image_problem(p.src))
        return why;
    if (const char* why = tile_image_problem(p.dst))
        return why;
    if (p.src.desc.c != p.dst.desc.c)
        return "scatter: channel counts differ";
    if (p.mode == TileScatterMode::ACCUMULATE && p.dst.f32 == nullptr)
        return "scatter: accumulation needs an fp32 destination";
    if (p.rect.pixels() == 0)
        return nullptr;
    const int y_lo = p.origin_y + p.rect.y_begin - p.ay.window_begin;
    const int y_hi = p.origin_y + p.rect.y_end - p.ay.window_begin;
    const int x_lo = p.origin_x + p.rect.x_begin - p.ax.window_begin;
    const int x_hi = p.origin_x + p.rect.x_end - p.ax.window_begin;
    if (y_lo < 0 || x_lo < 0 || y_hi > p.src.desc.h || x_hi > p.src.desc.w)
        return "scatter: the tile's output does not cover its blend support";
    return nullptr;
}

// The CPU walk of the kernels: every element, in index order (the kernels' grid-stride loops
// visit the same set; elements are independent).
inline void tile_gather_host(const TileGatherParams& p) {
    for (int64_t k = 0; k < p.work(); ++k)
        tile_gather_element(p, k);
}
inline void tile_scatter_host(const TileScatterParams& p) {
    for (int64_t k = 0; k < p.work(); ++k)
        tile_scatter_element(p, k);
}

}  // namespace kiln::kernels
