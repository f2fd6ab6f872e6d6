// ATTENTION on the CPU backend: per head softmax(q k^T * scale) v, over q/k/v views in any
// buffer layout. K and V are packed head-major into scratch once per run; queries go in
// tiles of rows, one (head, tile) per OpenMP task, and the row maximum is subtracted before
// the exponential. Two kernels:
// - lanes (up to kLaneMaxKeys keys): 32 queries per task, one per SIMD lane of two
//   vectors; scores, softmax and the weighted sum of V in registers and a [keys][32]
//   scratch (L2-resident), no library calls. Measured on AVX-512 (one thread) against the
//   sgemm kernel: 1.9-2.4x faster with 4 to 77 keys, 1.3x with 1024 keys (one head of 32,
//   or 8 heads of 40);
// - sgemm (more keys): a tile's scores (rows x keys) from oneDNN's sgemm, exponentiated in
//   place, multiplied by V with a second sgemm and normalised on the way out.
// Scratch is sized at plan build.
#pragma once

#include <cstddef>
#include <string>

#include "engine/cpu/cpu_ops.h"

namespace kiln::engine::cpu {

// Scores row -> exp(row - max(row)) in place; returns 1 / sum of the exponentials.
float softmax_exp_row(float* __restrict s, int n);

class AttentionOp {
  public:
    AttentionOp(const CpuView& q,
                const CpuView& k,
                const CpuView& v,
                const CpuView& dst,
                const AttentionParams& params,
                int threads);

    size_t scratch_bytes() const;
    static size_t scratch_bytes_for(int queries, int keys, int channels, int heads, int threads);
    // scratch: at least scratch_bytes(), 64-byte aligned.
    void run(void* scratch) const;
    std::string describe() const;

    // Key count up to which the lane kernel runs.
    static constexpr int kLaneMaxKeys = 4096;

  private:
    static bool use_lanes(int keys);
    static int tile_rows(int queries, int keys, int heads, int threads);

    CpuView q_, k_, v_, dst_;
    int queries_ = 0, keys_ = 0, channels_ = 0, heads_ = 1, d_ = 0;
    float scale_ = 1.0f;
    int threads_ = 1;
    bool lanes_ = false;
    int tile_ = 1;
};

}  // namespace kiln::engine::cpu
