// The UNet generators' non-convolution ops on the CPU backend (waifu2x CUNet, Real-CUGAN):
// squeeze-excitation's global average pool (its channel scale is MulOp, beside AddOp) and
// the skip connections' crop; and OmniSR's ESA max pool. Set up once with the plan; running
// allocates nothing.
#pragma once

#include <vector>

#include "engine/cpu/cpu_unet_ops.h"

namespace kiln::engine::cpu {

// dst [1, 1, c] = the mean of every channel of src, summed in double.
struct GlobalAvgPoolOp {
    CpuView src, dst;
    GlobalAvgPoolOp(const CpuView& s, const CpuView& d) : src(s), dst(d) {}
    void run(int threads) const;
};

// dst = the maximum of each kernel x kernel window of src at the stride (no padding).
struct MaxPoolOp {
    CpuView src, dst;
    int kernel = 1, stride = 1;
    MaxPoolOp(const CpuView& s, const CpuView& d, int k, int st)
        : src(s), dst(d), kernel(k), stride(st) {}
    void run(int threads) const;
};

// dst = src[top : top + dst.h, left : left + dst.w].
struct CropOp {
    CpuView src, dst;
    int top = 0, left = 0;
    std::vector<ChannelRun> runs;
    CropOp(const CpuView& s, const CpuView& d, int crop_top, int crop_left);
    void run(int threads) const;
};

}  // namespace kiln::engine::cpu
