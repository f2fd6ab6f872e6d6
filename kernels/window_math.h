// Pixel groups of OmniSR's window and channel attention (WINDOW_ATTENTION, CHANNEL_ATTENTION;
// the definitions are in engine/graph/graph.h, above PixelGroups) as host-device index maps,
// plus the warp reductions' combination order, so that the CPU tests (tests/kernels) check the
// kernels' pixel <-> (group, token) mapping and run their exact walk. Plain C++.
//
// Over an [h, w] map with window ws (gh = h / ws, gw = w / ws):
//   BLOCKS (both ops):       gh * gw groups of ws * ws pixels; token t of group g is pixel
//                            ((g / gw) * ws + t / ws, (g % gw) * ws + t % ws).
//   WINDOW_GRID:             gh * gw groups of ws * ws pixels spaced (gh, gw) apart; token t of
//                            group g is pixel ((t / ws) * gh + g / gw, (t % ws) * gw + g % gw).
//   CHANNEL_GRID:            ws * ws groups of gh * gw pixels spaced ws apart; member t of group
//                            g is pixel ((t / gw) * ws + g / ws, (t % gw) * ws + g % ws).
#pragma once

#include <cstdint>

#include "core/half.h"  // KILN_HD

namespace kiln::kernels {

enum class GroupLayout : int { BLOCKS, WINDOW_GRID, CHANNEL_GRID };

struct PixelGroupMap {
    GroupLayout layout = GroupLayout::BLOCKS;
    int ws = 1;  // the window
    int w = 1;   // the map's width (pixel index = y * w + x)
    int gh = 1, gw = 1;

    // Groups, and pixels (tokens) per group.
    KILN_HD int count() const { return layout == GroupLayout::CHANNEL_GRID ? ws * ws : gh * gw; }
    KILN_HD int members() const { return layout == GroupLayout::CHANNEL_GRID ? gh * gw : ws * ws; }
    // The pixel index y * w + x of token t of group g.
    KILN_HD int64_t pixel(int g, int t) const {
        int y = 0, x = 0;
        if (layout == GroupLayout::BLOCKS) {
            y = (g / gw) * ws + t / ws;
            x = (g % gw) * ws + t % ws;
        } else if (layout == GroupLayout::WINDOW_GRID) {
            y = (t / ws) * gh + g / gw;
            x = (t % ws) * gw + g % gw;
        } else {
            y = (t / gw) * ws + g / ws;
            x = (t % gw) * ws + g % ws;
        }
        return static_cast<int64_t>(y) * w + x;
    }
};

// h and w are multiples of ws (the graph checks it).
KILN_HD inline PixelGroupMap pixel_group_map(GroupLayout layout, int h, int w, int ws) {
    PixelGroupMap m;
    m.layout = layout;
    m.ws = ws;
    m.w = w;
    m.gh = h / ws;
    m.gw = w / ws;
    return m;
}

// The layout of an op: window attention (channel = false) or channel attention, over blocks
// or grid groups.
KILN_HD inline GroupLayout group_layout(bool channel, bool grid) {
    if (!grid)
        return GroupLayout::BLOCKS;
    return channel ? GroupLayout::CHANNEL_GRID : GroupLayout::WINDOW_GRID;
}

// What a warp's butterfly reduction (x op= __shfl_xor_sync(x, 16), 8, 4, 2, 1) leaves in
// every lane, for the host walks: each step combines lane l with lane l ^ delta, both reading
// the values before the step (the same order, so the same fp32 sums, as on the device).
inline constexpr int kWarpLanes = 32;

inline float butterfly_sum(const float (&lanes)[kWarpLanes]) {
    float v[kWarpLanes], next[kWarpLanes];
    for (int l = 0; l < kWarpLanes; ++l)
        v[l] = lanes[l];
    for (int delta = kWarpLanes / 2; delta > 0; delta /= 2) {
        for (int l = 0; l < kWarpLanes; ++l)
            next[l] = v[l] + v[l ^ delta];
        for (int l = 0; l < kWarpLanes; ++l)
            v[l] = next[l];
    }
    return v[0];
}

inline float butterfly_max(const float (&lanes)[kWarpLanes]) {
    float m = lanes[0];
    for (int l = 1; l < kWarpLanes; ++l)
        m = lanes[l] > m ? lanes[l] : m;
    return m;
}

}  // namespace kiln::kernels
