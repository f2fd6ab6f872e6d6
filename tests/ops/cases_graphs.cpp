// Several ops in one graph: every op reading a planar buffer, SD transformer blocks (group
// norm, layer norms, self and cross attention, GEGLU feed-forward, residual adds) and a batch
// of three samples through one plan.
#include <cmath>

#include "tests/ops/case_families.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_builders.h"

namespace kiln::test {

using engine::Activation;
using engine::Graph;

void add_graph_cases(std::vector<OpCase>& v) {
    // A thin buffer that a convolution reads is planar NCHW: every op must read it too.
    v.push_back({.name = "norms, activations, geglu, attention, add and concat of a planar input",
                 .inputs = {{5, 7, 6}, {1, 1, 6}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = conv_layer(g, x[0], 6, 3, 1);  // makes x[0] planar
                         auto b = g.group_norm("gn", x[0], norm_params(6, 2, Activation::SILU, 2));
                         auto c = g.layer_norm("ln", x[0], norm_params(6, 1, Activation::NONE, 3));
                         auto d = g.geglu(x[0]);
                         auto e = g.attention("attn", x[0], x[0], x[0], heads(2, 6));
                         auto f = g.add(x[0], x[1], 0.5f);
                         auto h = g.activation(x[0], Activation::GELU);
                         return g.concat(g.concat(g.concat(a, b), g.concat(c, d)),
                                         g.concat(g.concat(e, f), h));
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "transformer block 8x8x32, 7 context tokens of 24",
                 .inputs = {{8, 8, 32}, {7, 1, 24}},
                 .build = [](Graph& g, const Ids& x) { return transformer_block(g, x[0], x[1]); },
                 .cpu = kCpuConv});
    v.push_back({.name = "transformer block 5x3x24, 1 context token of 12",
                 .inputs = {{5, 3, 24}, {1, 1, 12}},
                 .build = [](Graph& g, const Ids& x) { return transformer_block(g, x[0], x[1]); },
                 .cpu = kCpuConv});
    v.push_back(
        {.name = "batch 3: norm, self+cross attention, geglu, residuals",
         .inputs = {{4, 4, 32}, {7, 1, 32}},
         .build =
             [](Graph& g, const Ids& x) {
                 constexpr float kBeta = 0.2f;
                 auto h = g.group_norm("gn", x[0], norm_params(32, 8, Activation::SILU, 9, kBeta));
                 auto ln1 = g.layer_norm("ln1", h, norm_params(32, 1, Activation::NONE, 10, kBeta));
                 auto a = g.attention("self", ln1, h, h, {4, 1.0f / std::sqrt(8.0f)});
                 h = g.add(a, h);
                 auto c = g.attention("cross", h, x[1], x[1], {4, 1.0f / std::sqrt(8.0f)});
                 h = g.add(c, h);
                 auto ln2 = g.layer_norm("ln2", h, norm_params(32, 1, Activation::NONE, 11, kBeta));
                 auto ff = g.conv2d("ff_in", ln2, random_conv(32, 128, 1, 12), {});
                 auto gl = g.geglu(ff);
                 auto out = g.conv2d("ff_out", gl, random_conv(64, 32, 1, 13), {});
                 return g.concat(g.add(out, h), x[0]);
             },
         .cpu = kCpuConv,
         .cuda = widened(kCudaAttn, 5, 4),
         .batch = 3,
         .seed = 100});
}

}  // namespace kiln::test
