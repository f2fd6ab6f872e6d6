// The diffusion UNet's elementwise and normalisation ops on the CPU backend (OpenMP), over
// views in any buffer layout (blocked, NHWC, planar). Each op is set up once with the plan
// (channel runs, scratch size) and then runs with no allocation; scratch comes from the
// plan's shared scratch region.
#pragma once

#include <initializer_list>
#include <vector>

#include "engine/cpu/cpu_ops.h"

namespace kiln::engine::cpu {

// Threads the norm and attention ops run with and size their per-thread scratch for: the
// context's count, at most the machine's hardware threads (0: the hardware threads), so that
// Backend::estimate_peak_bytes, which knows no context, still bounds the scratch.
int op_thread_slots(int threads);

// Channels [c0, c0 + len) lie at consecutive floats of every view of a walk, at every pixel:
// one run of c for NHWC, one per block for blocked views, one per channel for planar ones.
struct ChannelRun {
    int c0 = 0;
    int len = 0;
};
std::vector<ChannelRun> channel_runs(std::initializer_list<const CpuView*> views, int c);

// Channels [c0, c0 + c) of v: the same buffer, its offset table advanced by c0.
CpuView sub_view(const CpuView& v, int c0, int c);

// dst = act(src); act is RELU, SILU or GELU.
struct ActivationOp {
    CpuView src, dst;
    Activation act = Activation::NONE;
    std::vector<ChannelRun> runs;
    ActivationOp(const CpuView& s, const CpuView& d, Activation a);
    void run(int threads) const;
};

// dst [.., c] = src[.., :c] * gelu(src[.., c:]).
struct GegluOp {
    CpuView value, gate, dst;
    std::vector<ChannelRun> runs;
    GegluOp(const CpuView& src, const CpuView& d);
    void run(int threads) const;
};

// dst = [a | b] over channels.
struct ConcatOp {
    CpuView a, b, dst, dst_a, dst_b;
    std::vector<ChannelRun> runs_a, runs_b;
    ConcatOp(const CpuView& va, const CpuView& vb, const CpuView& d);
    void run(int threads) const;
};

// dst = a * scale + b; b is either a's shape or [1, 1, c] (added to every pixel).
struct AddOp {
    CpuView a, b, dst;
    float scale = 1.0f;
    bool broadcast = false;
    std::vector<ChannelRun> runs;
    AddOp(const CpuView& va, const CpuView& vb, const CpuView& d, float s);
    void run(int threads) const;
};

// dst = a * b; b is either a's shape or [1, 1, c] (squeeze-excitation's channel scale).
struct MulOp {
    CpuView a, b, dst;
    bool broadcast = false;
    std::vector<ChannelRun> runs;
    MulOp(const CpuView& va, const CpuView& vb, const CpuView& d);
    void run(int threads) const;
};

// GROUP_NORM: statistics per group over all pixels (fp32 chunk sums accumulated in double,
// the mean subtracted before squaring), then y = x * a[ch] + b[ch] and the activation.
struct GroupNormOp {
    CpuView src, dst;
    NormParams params;
    std::vector<ChannelRun> src_runs, runs;
    int threads = 1;
    GroupNormOp(const CpuView& s, const CpuView& d, const NormParams& p, int plan_threads);
    // Bytes of scratch run() needs.
    size_t scratch_bytes() const { return scratch_bytes_for(src.layout.c, threads); }
    static size_t scratch_bytes_for(int c, int threads);
    void run(void* scratch) const;
};

// LAYER_NORM: per pixel over its channels.
struct LayerNormOp {
    CpuView src, dst;
    NormParams params;
    std::vector<ChannelRun> src_runs, dst_runs;
    int threads = 1;
    LayerNormOp(const CpuView& s, const CpuView& d, const NormParams& p, int plan_threads);
    size_t scratch_bytes() const { return scratch_bytes_for(src.layout.c, threads); }
    static size_t scratch_bytes_for(int c, int threads);
    void run(void* scratch) const;
};

}  // namespace kiln::engine::cpu
