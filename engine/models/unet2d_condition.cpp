#include "engine/models/unet2d_condition.h"

#include <cmath>
#include <utility>

#include "core/error.h"

namespace kiln::engine {

namespace {

// Transformer2DModel's GroupNorm uses eps 1e-6 and the BasicTransformerBlock's LayerNorms
// 1e-5 whatever the config says (diffusers' defaults for SD UNets).
constexpr float kTransformerNormEps = 1e-6f;
constexpr float kLayerNormEps = 1e-5f;

std::string dims_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// Several Linear layers of one input as one convolution: weight rows stacked, biases too
// (zeros for a layer without one; none when no layer has one).
ConvWeights stack(const std::vector<const ConvWeights*>& parts) {
    ConvWeights out = *parts.front();
    auto weight = std::make_shared<std::vector<float>>();
    std::shared_ptr<std::vector<float>> bias;
    out.out_channels = 0;
    for (const ConvWeights* p : parts) {
        weight->insert(weight->end(), p->weight->begin(), p->weight->end());
        if (p->bias && !bias)
            bias = std::make_shared<std::vector<float>>(static_cast<size_t>(out.out_channels));
        out.out_channels += p->out_channels;
    }
    if (bias) {
        bias->clear();
        for (const ConvWeights* p : parts) {
            if (p->bias)
                bias->insert(bias->end(), p->bias->begin(), p->bias->end());
            else
                bias->insert(bias->end(), static_cast<size_t>(p->out_channels), 0.0f);
        }
    }
    out.weight = std::move(weight);
    out.bias = std::move(bias);
    return out;
}

// The epilogue that adds `residual` to a convolution's output.
Epilogue plus(ValueId residual) {
    Epilogue e;
    e.adds.push_back({residual, 1.0f});
    return e;
}

}  // namespace

UNet2DCondition::UNet2DCondition(weights::UNetConfig config, weights::StateDict weights)
    : config_(std::move(config)) {
    for (auto& [name, t] : weights) {
        tensors_[name] = {t.shape, std::make_shared<const std::vector<float>>(std::move(t.data))};
    }
    // Building a graph touches every tensor: a missing or misshapen one fails here, at load.
    const int m = size_multiple();
    build_graph(m, m, 1);
}

int64_t UNet2DCondition::parameter_count() const {
    int64_t n = 0;
    for (const auto& [name, t] : tensors_)
        n += static_cast<int64_t>(t.data->size());
    return n;
}

const UNet2DCondition::Tensor& UNet2DCondition::tensor(const std::string& key, size_t rank) const {
    const auto it = tensors_.find(key);
    if (it == tensors_.end())
        throw core::Error(core::ErrorCode::BAD_FILE, "UNet weights lack tensor '" + key + "'");
    if (rank && it->second.shape.size() != rank) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "UNet tensor '" + key + "' has shape " + dims_text(it->second.shape) +
                              ", expected " + std::to_string(rank) + " dimensions");
    }
    return it->second;
}

std::shared_ptr<const std::vector<float>> UNet2DCondition::bias(const std::string& prefix,
                                                                int out_channels) const {
    if (!tensors_.count(prefix + ".bias"))
        return nullptr;
    const Tensor& b = tensor(prefix + ".bias", 1);
    if (b.shape[0] != out_channels)
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "UNet tensor '" + prefix + ".bias' has the wrong size");
    return b.data;
}

ConvWeights UNet2DCondition::conv(const std::string& prefix, int stride) const {
    const Tensor& w = tensor(prefix + ".weight", 4);
    if (w.shape[2] != w.shape[3] || w.shape[2] % 2 == 0) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "UNet tensor '" + prefix + ".weight' is not an odd square kernel");
    }
    ConvWeights c;
    c.weight = w.data;
    c.out_channels = static_cast<int>(w.shape[0]);
    c.in_channels = static_cast<int>(w.shape[1]);
    c.kernel = static_cast<int>(w.shape[2]);
    c.stride = stride;
    c.bias = bias(prefix, c.out_channels);
    return c;
}

ConvWeights UNet2DCondition::linear(const std::string& prefix) const {
    const Tensor& w = tensor(prefix + ".weight", 0);
    const bool as_conv = w.shape.size() == 4 && w.shape[2] == 1 && w.shape[3] == 1;
    if (w.shape.size() != 2 && !as_conv) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "UNet tensor '" + prefix + ".weight' has shape " + dims_text(w.shape) +
                              ", expected a Linear layer");
    }
    ConvWeights c;
    c.weight = w.data;
    c.out_channels = static_cast<int>(w.shape[0]);
    c.in_channels = static_cast<int>(w.shape[1]);
    c.kernel = 1;
    c.bias = bias(prefix, c.out_channels);
    return c;
}

NormParams UNet2DCondition::norm(const std::string& prefix, int groups, float eps) const {
    NormParams n;
    n.groups = groups;
    n.eps = eps;
    n.gamma = tensor(prefix + ".weight", 1).data;
    n.beta = tensor(prefix + ".bias", 1).data;
    return n;
}

std::vector<float> UNet2DCondition::timestep_features(float timestep) const {
    const int dim = config_.block_out_channels.front();
    const int half = dim / 2;
    std::vector<float> sin_part(static_cast<size_t>(half)), cos_part(static_cast<size_t>(half));
    const float log_period = static_cast<float>(-std::log(10000.0));
    for (int i = 0; i < half; ++i) {
        const float exponent =
            log_period * static_cast<float>(i) / (static_cast<float>(half) - config_.freq_shift);
        const float arg = timestep * std::exp(exponent);
        sin_part[static_cast<size_t>(i)] = std::sin(arg);
        cos_part[static_cast<size_t>(i)] = std::cos(arg);
    }
    std::vector<float> out;
    out.reserve(static_cast<size_t>(dim));
    const auto& first = config_.flip_sin_to_cos ? cos_part : sin_part;
    const auto& second = config_.flip_sin_to_cos ? sin_part : cos_part;
    out.insert(out.end(), first.begin(), first.end());
    out.insert(out.end(), second.begin(), second.end());
    out.resize(static_cast<size_t>(dim), 0.0f);  // odd dims pad one zero
    return out;
}

ValueId UNet2DCondition::resnet(Graph& g, const std::string& p, ValueId x, ValueId temb) const {
    const int groups = config_.norm_num_groups;
    const float eps = config_.norm_eps;
    NormParams n1 = norm(p + "norm1", groups, eps);
    n1.act = Activation::SILU;
    ValueId h = g.group_norm(p + "norm1", x, std::move(n1));
    h = g.conv2d(p + "conv1", h, conv(p + "conv1"), {});
    const ValueId t = g.conv2d(p + "time_emb_proj", temb, linear(p + "time_emb_proj"), {});
    h = g.add(h, t);
    NormParams n2 = norm(p + "norm2", groups, eps);
    n2.act = Activation::SILU;
    h = g.group_norm(p + "norm2", h, std::move(n2));
    ValueId shortcut = x;
    if (tensors_.count(p + "conv_shortcut.weight")) {
        const Tensor& w = tensor(p + "conv_shortcut.weight", 0);
        shortcut = w.shape.size() == 2
                       ? g.conv2d(p + "conv_shortcut", x, linear(p + "conv_shortcut"), {})
                       : g.conv2d(p + "conv_shortcut", x, conv(p + "conv_shortcut"), {});
    }
    return g.conv2d(p + "conv2", h, conv(p + "conv2"), plus(shortcut));
}

ValueId UNet2DCondition::attention(Graph& g,
                                   const std::string& p,
                                   ValueId x,
                                   ValueId ctx,
                                   ValueId residual,
                                   int heads) const {
    const ConvWeights q = linear(p + "to_q");
    const ConvWeights k = linear(p + "to_k");
    const ConvWeights v = linear(p + "to_v");
    const int inner = q.out_channels;
    if (k.out_channels != inner || v.out_channels != inner || inner % heads != 0)
        throw core::Error(core::ErrorCode::BAD_FILE,
                          p + ": q, k and v widths do not fit the heads");
    AttentionParams params;
    params.heads = heads;
    params.scale = 1.0f / std::sqrt(static_cast<float>(inner / heads));
    ValueId vq, vk, vv;
    if (ctx == kNoValue) {
        // Self-attention: q, k and v in one convolution, read as channel views.
        const ValueId all = g.conv2d(p + "to_qkv", x, stack({&q, &k, &v}), {});
        vq = g.channels(all, 0, inner);
        vk = g.channels(all, inner, inner);
        vv = g.channels(all, 2 * inner, inner);
    } else {
        vq = g.conv2d(p + "to_q", x, q, {});
        const ValueId both = g.conv2d(p + "to_kv", ctx, stack({&k, &v}), {});
        vk = g.channels(both, 0, inner);
        vv = g.channels(both, inner, inner);
    }
    const ValueId o = g.attention(p + "attention", vq, vk, vv, params);
    return g.conv2d(p + "to_out.0", o, linear(p + "to_out.0"), plus(residual));
}

ValueId UNet2DCondition::transformer(Graph& g,
                                     const std::string& p,
                                     ValueId x,
                                     ValueId ctx,
                                     int heads) const {
    ValueId h =
        g.group_norm(p + "norm", x, norm(p + "norm", config_.norm_num_groups, kTransformerNormEps));
    h = g.conv2d(p + "proj_in", h, linear(p + "proj_in"), {});
    const std::string b = p + "transformer_blocks.0.";
    ValueId n = g.layer_norm(b + "norm1", h, norm(b + "norm1", 1, kLayerNormEps));
    h = attention(g, b + "attn1.", n, kNoValue, h, heads);
    n = g.layer_norm(b + "norm2", h, norm(b + "norm2", 1, kLayerNormEps));
    h = attention(g, b + "attn2.", n, ctx, h, heads);
    n = g.layer_norm(b + "norm3", h, norm(b + "norm3", 1, kLayerNormEps));
    ValueId f = g.conv2d(b + "ff.net.0.proj", n, linear(b + "ff.net.0.proj"), {});
    f = g.geglu(f);
    h = g.conv2d(b + "ff.net.2", f, linear(b + "ff.net.2"), plus(h));
    return g.conv2d(p + "proj_out", h, linear(p + "proj_out"), plus(x));
}

Graph UNet2DCondition::build_graph(int h, int w, int context_tokens) const {
    const int m = size_multiple();
    if (h <= 0 || w <= 0 || h % m != 0 || w % m != 0) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "UNet: sample " + std::to_string(w) + "x" + std::to_string(h) +
                              " must be positive multiples of " + std::to_string(m));
    }
    if (context_tokens <= 0)
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "UNet: the context needs at least one token");
    const weights::UNetConfig& c = config_;
    const int n = c.levels();
    const int lpb = c.layers_per_block;
    const auto s = [](int v) { return std::to_string(v); };

    Graph g;
    const ValueId sample = g.input(h, w, c.in_channels);
    const ValueId tfeat = g.input(1, 1, c.block_out_channels.front());
    const ValueId ctx = g.input(context_tokens, 1, c.cross_attention_dim);

    Epilogue silu;
    silu.act = Activation::SILU;
    ValueId e = g.conv2d("time_embedding.linear_1", tfeat, linear("time_embedding.linear_1"), silu);
    e = g.conv2d("time_embedding.linear_2", e, linear("time_embedding.linear_2"), {});
    const ValueId temb = g.activation(e, Activation::SILU);  // every resnet applies SiLU first

    ValueId x = g.conv2d("conv_in", sample, conv("conv_in"), {});
    std::vector<ValueId> skips = {x};
    for (int i = 0; i < n; ++i) {
        const bool attn =
            c.down_blocks[static_cast<size_t>(i)] == weights::UNetBlockKind::CROSS_ATTENTION;
        const std::string block = "down_blocks." + s(i) + ".";
        for (int j = 0; j < lpb; ++j) {
            x = resnet(g, block + "resnets." + s(j) + ".", x, temb);
            if (attn) {
                x = transformer(g, block + "attentions." + s(j) + ".", x, ctx,
                                c.heads[static_cast<size_t>(i)]);
            }
            skips.push_back(x);
        }
        if (i != n - 1) {
            x = g.conv2d(block + "downsamplers.0.conv", x, conv(block + "downsamplers.0.conv", 2),
                         {});
            skips.push_back(x);
        }
    }
    x = resnet(g, "mid_block.resnets.0.", x, temb);
    x = transformer(g, "mid_block.attentions.0.", x, ctx, c.heads.back());
    x = resnet(g, "mid_block.resnets.1.", x, temb);
    for (int i = 0; i < n; ++i) {
        const bool attn =
            c.up_blocks[static_cast<size_t>(i)] == weights::UNetBlockKind::CROSS_ATTENTION;
        const std::string block = "up_blocks." + s(i) + ".";
        for (int j = 0; j < lpb + 1; ++j) {
            x = g.concat(x, skips.back());
            skips.pop_back();
            x = resnet(g, block + "resnets." + s(j) + ".", x, temb);
            if (attn) {
                x = transformer(g, block + "attentions." + s(j) + ".", x, ctx,
                                c.heads[static_cast<size_t>(n - 1 - i)]);
            }
        }
        if (i != n - 1) {
            x = g.upsample_nearest(x, 2);
            x = g.conv2d(block + "upsamplers.0.conv", x, conv(block + "upsamplers.0.conv"), {});
        }
    }
    NormParams out_norm = norm("conv_norm_out", c.norm_num_groups, c.norm_eps);
    out_norm.act = Activation::SILU;
    x = g.group_norm("conv_norm_out", x, std::move(out_norm));
    x = g.conv2d("conv_out", x, conv("conv_out"), {});
    g.output(x);
    return g;
}

}  // namespace kiln::engine
