// ACTIVATION, GEGLU, ADD and CONCAT: every buffer layout the CPU layout chooser gives (blocked
// with padding channels, NHWC, planar; views at channel offsets), 128-bit and scalar paths on
// the GPU, the broadcast add of a [1, 1, c] value (the UNet's timestep embedding), the UNet's
// skip-connection concatenations and SD's feed-forward GEGLU.
#include <string>

#include "tests/ops/case_families.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_builders.h"

namespace kiln::test {

using engine::Activation;
using engine::Graph;

namespace {

std::string activation_name(Activation act) {
    return act == Activation::RELU ? "relu" : act == Activation::SILU ? "silu" : "gelu";
}

void add_activation(std::vector<OpCase>& v) {
    for (const Activation act : {Activation::RELU, Activation::SILU, Activation::GELU}) {
        v.push_back(
            {.name = "activation " + activation_name(act) + " nhwc 20 ch and blocked padded 21 ch",
             .inputs = {{5, 7, 20}},
             .build =
                 [act](Graph& g, const Ids& x) {
                     auto a = g.activation(x[0], act);
                     auto b = g.activation(conv_layer(g, x[0], 21, 1, 1), act);
                     return g.concat(a, b);
                 },
             .cpu = kCpuOp,
             .input_scale = 6.0f});
    }
    v.push_back({.name = "activation silu of a thin view into a planar buffer",
                 .inputs = {{4, 6, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.activation(g.channels(x[0], 1, 2), Activation::SILU);
                         return conv_layer(g, a, 5, 3, 2);
                     },
                 .cpu = kCpuOp});
    for (const int c : {3, 64}) {
        for (const Activation act : {Activation::RELU, Activation::SILU, Activation::GELU}) {
            v.push_back({.name = "activation " + activation_name(act) + " c" + std::to_string(c),
                         .inputs = {{7, 9, c}},
                         .build = [act](Graph& g, const Ids& x) { return g.activation(x[0], act); },
                         .cpu = kCpuOp,
                         .cuda = kCudaOp,
                         .seed = 100});
        }
    }
}

void add_geglu(std::vector<OpCase>& v) {
    v.push_back({.name = "geglu 2x20 nhwc, 2x32 blocked, 2x24 blocked-padded",
                 .inputs = {{9, 1, 40}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.geglu(x[0]);  // 20
                         auto b =
                             g.geglu(conv_layer(g, x[0], 64, 1, 3));  // 32, halves block-aligned
                         auto c = g.geglu(conv_layer(g, x[0], 48, 1, 4));  // 24, gate half at 24
                         return g.concat(g.concat(a, b), c);
                     },
                 .cpu = kCpuOp,
                 .input_scale = 4.0f});
    v.push_back({.name = "geglu of a view at an offset",
                 .inputs = {{3, 5, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto buf = conv_layer(g, x[0], 48, 1, 5);
                         return g.geglu(g.channels(buf, 16, 32));
                     },
                 .cpu = kCpuOp});
    // SD's feed-forward (2 x 4 d) on small d, and an odd half.
    for (const int c : {16, 80, 6}) {
        v.push_back({.name = "geglu c" + std::to_string(c),
                     .inputs = {{64, 1, c}},
                     .build = [](Graph& g, const Ids& x) { return g.geglu(x[0]); },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp,
                     .seed = 100});
    }
}

void add_add(std::vector<OpCase>& v) {
    v.push_back({.name = "add broadcast [1,1,c] (second input through a 1x1 conv) and scale",
                 .inputs = {{5, 7, 24}, {1, 1, 10}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto t = conv_layer(g, x[1], 24, 1, 8);  // [1, 1, 24] blocked
                         return g.add(x[0], t, 0.5f);             // nhwc + blocked broadcast
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "add broadcast into blocked, planar and unaligned views",
                 .inputs = {{6, 3, 5}, {1, 1, 40}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = conv_layer(g, x[0], 40, 3, 10);  // blocked, padded
                         auto r1 = g.add(a, x[1]);
                         auto small = g.add(x[0], g.channels(x[1], 3, 5));  // thin, read by a conv
                         auto r2 = conv_layer(g, small, 40, 3, 11);
                         return g.add(r1, r2);
                     },
                 .cpu = kCpuOp});
    for (const int c : {64, 12}) {
        v.push_back({.name = "broadcast add c" + std::to_string(c),
                     .inputs = {{7, 5, c}, {1, 1, c}},
                     .build = [](Graph& g, const Ids& x) { return g.add(x[0], x[1], 1.0f); },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp,
                     .seed = 100});
    }
    for (const int c : {3, 64}) {
        v.push_back({.name = "add scaled c" + std::to_string(c),
                     .inputs = {{6, 7, c}},
                     .build =
                         [](Graph& g, const Ids& x) {
                             auto n = g.upsample_nearest(x[0], 1);
                             return g.add(x[0], n, 0.2f);
                         },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp});
    }
    v.push_back({.name = "add of channel slices",
                 .inputs = {{5, 5, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 48, 3, 22), {});
                         auto lo = g.channels(a, 8, 16);
                         auto hi = g.channels(a, 32, 16);
                         return g.add(lo, hi, 0.5f);
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
}

void add_concat(std::vector<OpCase>& v) {
    v.push_back({.name = "concat blocked + nhwc + planar-read output",
                 .inputs = {{7, 5, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = conv_layer(g, x[0], 20, 3, 6);  // blocked, padded
                         auto c = g.concat(a, x[0]);              // 23
                         auto d = g.concat(x[0], x[0]);  // 6, thin: planar (a conv reads it)
                         return g.concat(c, conv_layer(g, d, 16, 3, 7));
                     },
                 .cpu = kCpuOp});
    // UNet skip connections (aligned and odd channel counts).
    v.push_back({.name = "concat 32 | 16",
                 .inputs = {{6, 6, 32}, {6, 6, 16}},
                 .build = [](Graph& g, const Ids& x) { return g.concat(x[0], x[1]); },
                 .cpu = kCpuOp,
                 .cuda = kCudaOp,
                 .seed = 100});
    v.push_back({.name = "concat 3 | 5",
                 .inputs = {{5, 4, 3}, {5, 4, 5}},
                 .build = [](Graph& g, const Ids& x) { return g.concat(x[0], x[1]); },
                 .cpu = kCpuOp,
                 .cuda = kCudaOp,
                 .seed = 100});
}

}  // namespace

void add_elementwise_cases(std::vector<OpCase>& v) {
    add_activation(v);
    add_geglu(v);
    add_add(v);
    add_concat(v);
}

}  // namespace kiln::test
