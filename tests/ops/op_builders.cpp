#include "tests/ops/op_builders.h"

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/ops/graph_cases.h"

namespace kiln::test {

using engine::Activation;
using engine::Graph;
using engine::ValueId;

engine::NormParams norm_params(int c, int groups, Activation act, uint32_t seed, float beta_scale) {
    engine::NormParams p;
    p.groups = groups;
    p.eps = 1e-5f;
    auto gamma = random_vector(static_cast<size_t>(c), seed, 0.5f);
    for (float& v : gamma)
        v += 1.0f;
    p.gamma = std::make_shared<const std::vector<float>>(std::move(gamma));
    p.beta = std::make_shared<const std::vector<float>>(
        random_vector(static_cast<size_t>(c), seed + 1, beta_scale));
    p.act = act;
    return p;
}

engine::Epilogue epilogue(Activation act, float alpha) {
    engine::Epilogue e;
    e.act = act;
    e.alpha = alpha;
    return e;
}

ValueId conv_layer(Graph& g, ValueId x, int out, int kernel, uint32_t seed, int stride) {
    auto w = random_conv(g.value(x).c, out, kernel, seed);
    w.stride = stride;
    return g.conv2d("conv" + std::to_string(seed), x, std::move(w), {});
}

engine::AttentionParams heads(int n, int c) {
    engine::AttentionParams p;
    p.heads = n;
    p.scale = 1.0f / std::sqrt(static_cast<float>(c / n));
    return p;
}

ValueId self_attention(Graph& g, ValueId x, int c, int n, uint32_t seed) {
    auto qkv = conv_layer(g, x, 3 * c, 1, seed);
    return g.attention("attn", g.channels(qkv, 0, c), g.channels(qkv, c, c),
                       g.channels(qkv, 2 * c, c), heads(n, c));
}

ValueId cross_attention(Graph& g, ValueId x, ValueId ctx, int c, int n, uint32_t seed) {
    auto q = conv_layer(g, x, c, 1, seed);
    auto kv = conv_layer(g, ctx, 2 * c, 1, seed + 1);
    return g.attention("attn", q, g.channels(kv, 0, c), g.channels(kv, c, c), heads(n, c));
}

ValueId transformer_block(Graph& g, ValueId x, ValueId ctx) {
    const int c = g.value(x).c;
    auto h = g.group_norm("gn", x, norm_params(c, 8, Activation::NONE, 1));
    h = conv_layer(g, h, c, 1, 2);
    auto n = g.layer_norm("ln1", h, norm_params(c, 1, Activation::NONE, 3));
    h = g.add(conv_layer(g, self_attention(g, n, c, 2, 4), c, 1, 5), h);
    n = g.layer_norm("ln2", h, norm_params(c, 1, Activation::NONE, 6));
    h = g.add(conv_layer(g, cross_attention(g, n, ctx, c, 2, 7), c, 1, 9), h);
    n = g.layer_norm("ln3", h, norm_params(c, 1, Activation::NONE, 10));
    auto f = g.geglu(conv_layer(g, n, 8 * c, 1, 11));
    h = g.add(conv_layer(g, f, c, 1, 12), h);
    return g.add(h, x);
}

}  // namespace kiln::test
