// Small graph builders the op cases share, and the plan-level tests that run the same graphs
// (tests/cpu/diffusion_ops_test.cpp): norm parameters, convolution layers, attention blocks.
// Weights are random with fixed seeds, so a graph is the same on every backend and run.
#pragma once

#include <cstdint>

#include "engine/graph/graph.h"

namespace kiln::test {

// gamma = 1 + U(-0.5, 0.5), beta = U(-beta_scale, beta_scale).
engine::NormParams norm_params(int c,
                               int groups,
                               engine::Activation act,
                               uint32_t seed,
                               float beta_scale = 0.3f);

engine::Epilogue epilogue(engine::Activation act, float alpha = 0.2f);

// A convolution of x to `out` channels named "conv<seed>"; as a graph's first op on a thin
// input it makes a blocked buffer (padded when out is not a block multiple).
engine::ValueId conv_layer(engine::Graph& g,
                           engine::ValueId x,
                           int out,
                           int kernel,
                           uint32_t seed,
                           int stride = 1);

// `n` heads over c channels, scale 1 / sqrt(c / n).
engine::AttentionParams heads(int n, int c);

// Self-attention as the UNet builds it: q, k and v channel views of one 1x1 convolution.
engine::ValueId self_attention(engine::Graph& g, engine::ValueId x, int c, int n, uint32_t seed);
// q from x, k and v from ctx (two 1x1 convolutions).
engine::ValueId cross_attention(engine::Graph& g,
                                engine::ValueId x,
                                engine::ValueId ctx,
                                int c,
                                int n,
                                uint32_t seed);

// groupnorm -> 1x1 conv -> layernorm -> self attention -> add -> layernorm -> cross
// attention -> add -> layernorm -> 1x1 conv -> geglu -> 1x1 conv -> add, two inputs.
engine::ValueId transformer_block(engine::Graph& g, engine::ValueId x, engine::ValueId ctx);

}  // namespace kiln::test
