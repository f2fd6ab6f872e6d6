// The op-case table's families (one file each, cases_<family>.cpp) and the named bounds their
// rows use. Only the table's own files include this; tests read op_cases.h.
//
// CPU backend against the reference interpreter (fp32 against double): NMSE <= 1e-9; max
// |got - want| <= 1e-5 x max(1, max |want|) for ops alone (measured below 1e-6 when the
// diffusion rows were written; 1.5e-6 at most on 2026-12-02, the bicubic rows), 1e-4 for
// graphs with convolutions, 2e-4 for inputs of mean 100 (measured 1.2e-5). The upscale rows
// (convolution chains) were written against NMSE alone: 1e-9 direct, 1e-7 when oneDNN may
// pick Winograd F(4,3), which rounds differently from direct summation.
//
// CUDA backend against the CPU backend, inputs uniform in [-1, 1], NMSE (sum (a-b)^2 / sum
// b^2) and max |a-b| over the whole output. fp16 storage rounds each value to 2^-11 relative:
//   single elementwise ops (activation, GEGLU, concat, add, resampling): NMSE 1e-6, 2e-3;
//   GroupNorm / LayerNorm (outputs of unit variance, up to ~3): NMSE 1e-5, max abs 1e-2;
//   attention (fp16 q, k, v; fp32 scores and accumulation): NMSE 1e-4, max abs 5e-3;
//   convolutions and linear layers (fp16 weights and activations, fp32 accumulation): NMSE
//   2e-5 per layer, max abs 2e-2; chains widen these by the layer count.
#pragma once

#include <vector>

#include "tests/ops/op_cases.h"

namespace kiln::test {

using Ids = std::vector<engine::ValueId>;

inline constexpr CpuBound kCpuOp{1e-9, 1e-9, 1e-5};
inline constexpr CpuBound kCpuConv{1e-9, 1e-9, 1e-4};
inline constexpr CpuBound kCpuUpscale{1e-9, 1e-7, 0};

inline constexpr CudaBound kCudaOp{1e-6, 2e-3};
inline constexpr CudaBound kCudaNorm{1e-5, 1e-2};
inline constexpr CudaBound kCudaAttn{1e-4, 5e-3};
inline constexpr CudaBound kCudaConv{2e-5, 2e-2};

// A CUDA bound `n` times another's NMSE and `m` times its max abs (chains of layers).
constexpr CudaBound widened(CudaBound b, double n, double m) {
    return {b.max_nmse * n, b.max_abs * m};
}

void add_conv_cases(std::vector<OpCase>& v);
void add_resample_cases(std::vector<OpCase>& v);
void add_elementwise_cases(std::vector<OpCase>& v);
void add_norm_cases(std::vector<OpCase>& v);
void add_attention_cases(std::vector<OpCase>& v);
void add_graph_cases(std::vector<OpCase>& v);
void add_unet_gan_cases(std::vector<OpCase>& v);
void add_omnisr_cases(std::vector<OpCase>& v);

}  // namespace kiln::test
