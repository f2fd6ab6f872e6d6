#include "engine/pipeline/tiling.h"

#include <algorithm>

#include "core/error.h"

namespace kiln::engine {

std::vector<TileSpan> plan_tiles(int length, int tile, int pad, int multiple) {
    if (length <= 0 || multiple <= 0 || length % multiple != 0 || pad < 0) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "plan_tiles: bad geometry");
    }
    if (tile <= 0 || tile >= length)
        return {{0, length, 0, length}};
    tile = std::max(multiple, tile / multiple * multiple);
    pad = (pad + multiple - 1) / multiple * multiple;  // aligned windows keep >= pad context
    int window = std::min(length, tile + 2 * pad);
    window = (window + multiple - 1) / multiple * multiple;
    window = std::min(window, length);
    std::vector<TileSpan> spans;
    for (int begin = 0; begin < length; begin += tile) {
        TileSpan s;
        s.core_begin = begin;
        s.core_end = std::min(length, begin + tile);
        // Centre the window on the core, then shift it inside the image; keep it aligned.
        int start = s.core_begin - pad;
        start = std::clamp(start, 0, length - window);
        start = start / multiple * multiple;
        s.window_begin = start;
        s.window_end = start + window;
        spans.push_back(s);
    }
    return spans;
}

}  // namespace kiln::engine
