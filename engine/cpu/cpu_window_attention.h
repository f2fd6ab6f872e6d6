// OmniSR's attention ops on the CPU backend (definitions: engine/graph/graph.h, above
// PixelGroups), over qkv views in any buffer layout.
// - WindowAttentionOp: one OpenMP task per pixel group; the group's q, k and v (ws * ws
//   tokens of all heads) are gathered into per-thread scratch, then per head the scores,
//   softmax (row maximum subtracted) and weighted sum run on those dense rows.
// - ChannelAttentionOp: one task per group and no gather, because a grid group spans the
//   whole map: one pass accumulates every head's d x d products of q and k and their norms
//   in double, a second writes out = softmax(...) v pixel by pixel. Up to 256 channels in
//   heads of up to 32 (OmniSR: 64 in 4 heads of 16).
#pragma once

#include <cstddef>

#include <vector>

#include "engine/cpu/cpu_unet_ops.h"

namespace kiln::engine::cpu {

class WindowAttentionOp {
  public:
    WindowAttentionOp(const CpuView& qkv,
                      const CpuView& dst,
                      const WindowAttentionParams& params,
                      int threads);
    size_t scratch_bytes() const;
    static size_t scratch_bytes_for(int window, int channels, int threads);
    // scratch: at least scratch_bytes(), 64-byte aligned.
    void run(void* scratch) const;

  private:
    CpuView qkv_, dst_;
    WindowAttentionParams params_;
    int threads_ = 1;
    std::vector<ChannelRun> qkv_runs_, dst_runs_;
};

class ChannelAttentionOp {
  public:
    ChannelAttentionOp(const CpuView& qkv, const CpuView& dst, const WindowAttentionParams& params);
    void run(int threads) const;

  private:
    CpuView qkv_, v_, dst_;  // v_: channels [2c, 3c) of qkv_
    WindowAttentionParams params_;
    std::vector<ChannelRun> qk_runs_, v_runs_, dst_runs_;
};

}  // namespace kiln::engine::cpu
