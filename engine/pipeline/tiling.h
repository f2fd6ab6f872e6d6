// Tile geometry for the upscale pipeline, per axis. Every tile runs on a window of the same
// size (so one plan serves all tiles), placed around the tile's core and shifted inside the
// image at the borders; only the core of each tile's output is kept, so cores tile the image
// exactly and each has at least `pad` pixels of real context on every inner side.
#pragma once

#include <vector>

namespace kiln::engine {

struct TileSpan {
    int core_begin = 0, core_end = 0;      // pixels of the output this tile owns (input coords)
    int window_begin = 0, window_end = 0;  // input pixels the model sees
};

// length: image extent; tile: core size (<= 0 or >= length: one tile); pad: context on each
// side; multiple: window sizes are multiples of it (length must be a multiple already).
std::vector<TileSpan> plan_tiles(int length, int tile, int pad, int multiple);

}  // namespace kiln::engine
