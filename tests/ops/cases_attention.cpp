// ATTENTION: self (q, k and v views of one projection, as the UNet builds it, or q = k = v)
// and cross (k and v from a context sequence), head dims 3..160, 1 to 4100 keys (around the
// GPU's 32-key tile, the CPU's sgemm path past 4096), token counts with tile tails, NHWC and
// thin views, planar outputs read by a convolution.
#include <cmath>
#include <string>

#include "tests/ops/case_families.h"
#include "tests/ops/op_builders.h"

namespace kiln::test {

using engine::Graph;

namespace {

void add_self(std::vector<OpCase>& v) {
    for (const int n : {1, 2, 4}) {
        v.push_back(
            {.name = "self attention 8x8 tokens, 32 ch, heads " + std::to_string(n),
             .inputs = {{8, 8, 32}},
             .build = [n](Graph& g, const Ids& x) { return self_attention(g, x[0], 32, n, 1); },
             .cpu = kCpuOp});
    }
    v.push_back({.name = "self attention 77 tokens, 40 ch (nhwc views), 2 heads",
                 .inputs = {{77, 1, 16}},
                 .build = [](Graph& g, const Ids& x) { return self_attention(g, x[0], 40, 2, 2); },
                 .cpu = kCpuOp});
    v.push_back({.name = "self attention 1 token",
                 .inputs = {{1, 1, 16}},
                 .build = [](Graph& g, const Ids& x) { return self_attention(g, x[0], 16, 2, 3); },
                 .cpu = kCpuOp});
    v.push_back({.name = "self attention 5x7 tokens, 8 ch (thin views), 2 heads, planar out",
                 .inputs = {{5, 7, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return conv_layer(g, self_attention(g, x[0], 8, 2, 4), 3, 3, 5);
                     },
                 .cpu = kCpuOp});
    v.push_back({.name = "self attention 33x31 tokens (tiles with a tail), 32 ch, 1 head",
                 .inputs = {{33, 31, 8}},
                 .build = [](Graph& g, const Ids& x) { return self_attention(g, x[0], 32, 1, 7); },
                 .cpu = kCpuOp});
    // q = k = v = x at head dims 8, 40, 64, 80, 160 and 3 (odd).
    struct Heads {
        int c, heads, tokens_h, tokens_w;
    };
    for (const Heads hd : {Heads{64, 8, 8, 8}, Heads{80, 2, 6, 7}, Heads{64, 1, 9, 9},
                           Heads{160, 2, 5, 5}, Heads{160, 1, 4, 9}, Heads{9, 3, 3, 11}}) {
        const int d = hd.c / hd.heads;
        v.push_back({.name = "self attention c" + std::to_string(hd.c) + " heads " +
                             std::to_string(hd.heads) + " d" + std::to_string(d) + " tokens " +
                             std::to_string(hd.tokens_h * hd.tokens_w),
                     .inputs = {{hd.tokens_h, hd.tokens_w, hd.c}},
                     .build =
                         [hd, d](Graph& g, const Ids& x) {
                             return g.attention(
                                 "attn", x[0], x[0], x[0],
                                 {hd.heads, 1.0f / std::sqrt(static_cast<float>(d))});
                         },
                     .cpu = kCpuOp,
                     .cuda = kCudaAttn,
                     .seed = 100});
    }
    v.push_back({.name = "attention on slices of one qkv buffer",
                 .inputs = {{6, 6, 3 * 32}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto q = g.channels(x[0], 0, 32);
                         auto k = g.channels(x[0], 32, 32);
                         auto vv = g.channels(x[0], 64, 32);
                         return g.attention("attn", q, k, vv, {4, 1.0f / std::sqrt(8.0f)});
                     },
                 .cpu = kCpuOp,
                 .cuda = kCudaAttn,
                 .seed = 100});
}

void add_cross(std::vector<OpCase>& v) {
    for (const int tokens : {1, 4, 77}) {
        v.push_back({.name = "cross attention 9x7 queries, " + std::to_string(tokens) +
                             " context tokens of 24, 48 ch, 4 heads",
                     .inputs = {{9, 7, 16}, {tokens, 1, 24}},
                     .build = [](Graph& g,
                                 const Ids& x) { return cross_attention(g, x[0], x[1], 48, 4, 6); },
                     .cpu = kCpuOp});
    }
    v.push_back(
        {.name = "cross attention on raw inputs (nhwc), 3 heads of 5",
         .inputs = {{4, 5, 15}, {6, 1, 15}},
         .build = [](Graph& g,
                     const Ids& x) { return g.attention("attn", x[0], x[1], x[1], heads(3, 15)); },
         .cpu = kCpuOp,
         .input_scale = 3.0f});
    v.push_back({.name = "cross attention, 4100 context tokens (the sgemm kernel), 2 heads",
                 .inputs = {{3, 5, 16}, {4100, 1, 32}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.attention("attn", x[0], g.channels(x[1], 0, 16),
                                            g.channels(x[1], 16, 16), heads(2, 16));
                     },
                 .cpu = kCpuOp,
                 .input_scale = 2.0f});
    // Context sequences of 4, 33 or 77 tokens around the 32-key tile.
    for (const int keys : {4, 33, 77}) {
        v.push_back(
            {.name = "cross attention " + std::to_string(keys) + " keys d40",
             .inputs = {{8, 6, 80}, {keys, 1, 80}},
             .build =
                 [](Graph& g, const Ids& x) {
                     return g.attention("xattn", x[0], x[1], x[1], {2, 1.0f / std::sqrt(40.0f)});
                 },
             .cpu = kCpuOp,
             .cuda = kCudaAttn,
             .seed = 100});
    }
}

}  // namespace

void add_attention_cases(std::vector<OpCase>& v) {
    add_self(v);
    add_cross(v);
}

}  // namespace kiln::test
