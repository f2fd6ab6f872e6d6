// Index maps that the engine (host) and the kernels (device) share, so both sides take pixels
// from the same places: one definition, tested on the CPU (tests/cpu/tiling_test.cpp).
#pragma once

#include "core/host_device.h"

namespace kiln::core {

// Reflect index into [0, n), PyTorch / numpy 'reflect' (the edge pixel is not repeated),
// periodic for any distance: the upscale pipeline's pre-pad and the tile kernels' edge rule.
// n <= 1 gives 0 (a one-pixel axis reflects to itself; an empty one has nothing to divide).
KILN_HD inline int reflect_index(int i, int n) {
    if (n <= 1)
        return 0;
    const int period = 2 * (n - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

}  // namespace kiln::core
