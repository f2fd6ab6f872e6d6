// GROUP_NORM and LAYER_NORM: SD's 32 groups (2 channels per group at c 64, 10 at c 320), odd
// channels per group, one group, one pixel, token sequences [L, 1, d], views at aligned and
// unaligned channel offsets, planar outputs read by a convolution, and inputs of mean 100
// (statistics with the mean subtracted before squaring).
#include <string>

#include "tests/ops/case_families.h"
#include "tests/ops/op_builders.h"

namespace kiln::test {

using engine::Activation;
using engine::Graph;

namespace {

// Inputs of mean 100 and spread 1: fp32 statistics lose digits the reference keeps.
constexpr CpuBound kCpuLargeOffset{1e-9, 1e-9, 2e-4};
constexpr float kCudaBeta = 0.2f;  // the beta spread of the CUDA-measured rows

void add_group_norm(std::vector<OpCase>& v) {
    v.push_back({.name = "group norm 8 groups of 3 + silu (nhwc input)",
                 .inputs = {{5, 7, 24}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.group_norm("gn", x[0], norm_params(24, 8, Activation::SILU, 1));
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "group norm 1 group, blocked padded (conv output 20 ch)",
                 .inputs = {{9, 3, 5}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = conv_layer(g, x[0], 20, 3, 2);
                         return g.group_norm("gn", a, norm_params(20, 1, Activation::NONE, 3));
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "group norm 2 groups, thin, planar output read by a conv",
                 .inputs = {{4, 5, 6}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.group_norm("gn", x[0], norm_params(6, 2, Activation::SILU, 4));
                         return conv_layer(g, a, 7, 3, 5);
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "group norm of block-aligned views at offsets",
                 .inputs = {{6, 5, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto buf = conv_layer(g, x[0], 48, 1, 6);
                         auto a = g.group_norm("gn1", g.channels(buf, 16, 16),
                                               norm_params(16, 8, Activation::SILU, 7));
                         auto b = g.group_norm("gn2", g.channels(buf, 32, 16),
                                               norm_params(16, 2, Activation::NONE, 8));
                         return g.concat(a, b);
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "group norm of an unaligned view (nhwc buffer)",
                 .inputs = {{7, 3, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto buf = conv_layer(g, x[0], 40, 1, 9);
                         return g.group_norm("gn", g.channels(buf, 3, 30),
                                             norm_params(30, 5, Activation::SILU, 10));
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "group norm 32 groups, 1 pixel",
                 .inputs = {{1, 1, 64}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.group_norm("gn", x[0], norm_params(64, 32, Activation::NONE, 11));
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "group norm of a large offset (mean 100, spread 1)",
                 .inputs = {{33, 31, 32}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.group_norm("gn", x[0], norm_params(32, 4, Activation::SILU, 12));
                     },
                 .cpu = kCpuLargeOffset,
                 .input_offset = 100.0f});
    v.push_back({.name = "group_norm 32 groups c64 silu",
                 .inputs = {{8, 8, 64}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.group_norm("gn", x[0],
                                             norm_params(64, 32, Activation::SILU, 1, kCudaBeta));
                     },
                 .cpu = kCpuOp,
                 .cuda = kCudaNorm,
                 .seed = 100});
    v.push_back({.name = "group_norm 3 groups c15 (scalar)",
                 .inputs = {{5, 7, 15}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.group_norm("gn", x[0],
                                             norm_params(15, 3, Activation::NONE, 2, kCudaBeta));
                     },
                 .cpu = kCpuOp,
                 .cuda = kCudaNorm,
                 .seed = 100});
    v.push_back({.name = "group_norm 32 groups c320 16x16",
                 .inputs = {{16, 16, 320}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.group_norm("gn", x[0],
                                             norm_params(320, 32, Activation::NONE, 3, kCudaBeta));
                     },
                 .cpu = kCpuOp,
                 .cuda = kCudaNorm,
                 .seed = 100});
}

void add_layer_norm(std::vector<OpCase>& v) {
    v.push_back({.name = "layer norm 77 tokens x 40 (blocked, padded)",
                 .inputs = {{77, 1, 40}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.layer_norm("ln", x[0], norm_params(40, 1, Activation::NONE, 1));
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "layer norm 1 token x 24",
                 .inputs = {{1, 1, 24}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.layer_norm("ln", x[0], norm_params(24, 1, Activation::NONE, 2));
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "layer norm thin 5 channels + silu, output planar",
                 .inputs = {{5, 3, 5}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.layer_norm("ln", x[0], norm_params(5, 1, Activation::SILU, 3));
                         return conv_layer(g, a, 4, 3, 4);
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "layer norm of views (aligned and not)",
                 .inputs = {{9, 1, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto buf = conv_layer(g, x[0], 64, 1, 5);
                         auto a = g.layer_norm("ln1", g.channels(buf, 32, 32),
                                               norm_params(32, 1, Activation::NONE, 6));
                         auto buf2 = conv_layer(g, x[0], 50, 1, 7);
                         auto b = g.layer_norm("ln2", g.channels(buf2, 7, 32),
                                               norm_params(32, 1, Activation::NONE, 8));
                         return g.add(a, b);
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "layer norm of a large offset",
                 .inputs = {{13, 3, 48}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.layer_norm("ln", x[0], norm_params(48, 1, Activation::NONE, 9));
                     },
                 .cpu = kCpuLargeOffset,
                 .input_offset = 100.0f});
    // Token sequences [L, 1, d] and an image.
    for (const int c : {8, 40, 64, 320}) {
        v.push_back({.name = "layer_norm c" + std::to_string(c),
                     .inputs = {{77, 1, c}},
                     .build =
                         [c](Graph& g, const Ids& x) {
                             return g.layer_norm("ln", x[0],
                                                 norm_params(c, 1, Activation::NONE, 4, kCudaBeta));
                         },
                     .cpu = kCpuOp,
                     .cuda = kCudaNorm,
                     .seed = 100});
    }
    v.push_back({.name = "layer_norm silu 6x5 c24",
                 .inputs = {{6, 5, 24}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.layer_norm("ln", x[0],
                                             norm_params(24, 1, Activation::SILU, 5, kCudaBeta));
                     },
                 .cpu = kCpuOp,
                 .cuda = kCudaNorm,
                 .seed = 100});
}

}  // namespace

void add_norm_cases(std::vector<OpCase>& v) {
    add_group_norm(v);
    add_layer_norm(v);
}

}  // namespace kiln::test
