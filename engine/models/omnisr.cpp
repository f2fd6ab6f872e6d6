#include "engine/models/omnisr.h"

#include <cmath>

#include "core/error.h"

namespace kiln::engine {

namespace {

constexpr int kHeads = 4;                 // OSA_Block: dim_head = channels / 4, heads = 4
constexpr float kLayerNormEps = 1e-5f;    // nn.LayerNorm before the window attentions
constexpr float kLayerNorm2dEps = 1e-6f;  // OmniSR's LayerNorm2d before the conv branches

Epilogue act_epilogue(Activation act) {
    Epilogue e;
    e.act = act;
    return e;
}

Epilogue plus(ValueId residual) {
    Epilogue e;
    e.adds.push_back({residual, 1.0f});
    return e;
}

// bias[h][i][j] = table[(ai - aj + ws - 1) * (2 ws - 1) + (bi - bj + ws - 1)][h] for tokens
// i = (ai, bi), j = (aj, bj) of a ws x ws window (row-major).
std::vector<float> expand_position_bias(const std::vector<float>& table, int ws, int heads) {
    const int n = ws * ws, span = 2 * ws - 1;
    std::vector<float> bias(static_cast<size_t>(heads) * n * n);
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < n; ++j) {
            const int row = (i / ws - j / ws + ws - 1) * span + (i % ws - j % ws + ws - 1);
            for (int h = 0; h < heads; ++h) {
                bias[(static_cast<size_t>(h) * n + i) * n + j] =
                    table[static_cast<size_t>(row) * heads + h];
            }
        }
    }
    return bias;
}

// The weight rows (outputs) [c, 2c) before [0, c).
ConvWeights swap_output_halves(ConvWeights w) {
    const size_t half = w.weight->size() / 2;
    std::vector<float> swapped(w.weight->begin() + static_cast<std::ptrdiff_t>(half),
                               w.weight->end());
    swapped.insert(swapped.end(), w.weight->begin(),
                   w.weight->begin() + static_cast<std::ptrdiff_t>(half));
    w.weight = std::make_shared<const std::vector<float>>(std::move(swapped));
    if (w.bias) {
        const size_t b = w.bias->size() / 2;
        std::vector<float> bias(w.bias->begin() + static_cast<std::ptrdiff_t>(b), w.bias->end());
        bias.insert(bias.end(), w.bias->begin(), w.bias->begin() + static_cast<std::ptrdiff_t>(b));
        w.bias = std::make_shared<const std::vector<float>>(std::move(bias));
    }
    return w;
}

}  // namespace

OmniSR::OmniSR(const weights::OmniSRConfig& config, weights::StateDict weights)
    : Model("OmniSR", config.scale, std::move(weights)), config_(config) {
    for (int i = 0; i < config_.res_num; ++i) {
        for (int j = 0; j < config_.block_num; ++j) {
            const std::string key = "residual_layer." + std::to_string(i) + ".residual_layer." +
                                    std::to_string(j) + ".layer.";
            if (config_.pe) {
                for (const char* layer : {"2", "8"}) {
                    position_bias_[key + layer] = std::make_shared<const std::vector<float>>(
                        expand_position_bias(values(key + layer + ".fn.rel_pos_bias.weight"),
                                             config_.window_size, kHeads));
                }
            }
            for (const char* layer : {"4", "6", "10", "12"}) {
                const std::string fn = key + layer + ".fn.";
                gated_[key + layer] = {swap_output_halves(conv(fn + "project_in")),
                                       swap_output_halves(depthwise(fn + "dwconv"))};
            }
        }
    }
}

ConvWeights OmniSR::linear(const std::string& key) const {
    ConvWeights w;
    std::vector<int64_t> shape;
    w.weight = tensor(key, &shape);
    if (shape.size() != 2)
        throw core::Error(core::ErrorCode::BAD_FILE, "OmniSR: '" + key + "' is not a linear layer");
    w.out_channels = static_cast<int>(shape[0]);
    w.in_channels = static_cast<int>(shape[1]);
    w.kernel = 1;
    return w;
}

ConvWeights OmniSR::depthwise(const std::string& prefix) const {
    ConvWeights w = conv(prefix);
    w.in_channels = w.out_channels;
    w.groups = w.out_channels;
    return w;
}

NormParams OmniSR::layer_norm(const std::string& key, float eps) const {
    NormParams p;
    p.eps = eps;
    p.gamma = tensor(key + ".norm.weight", nullptr);
    p.beta = tensor(key + ".norm.bias", nullptr);
    return p;
}

ValueId OmniSR::build(Graph& g, ValueId x) const {
    const ValueId features = g.conv2d("input", x, conv("input"), {});
    ValueId out = features;
    for (int i = 0; i < config_.res_num; ++i)
        out = group(g, "residual_layer." + std::to_string(i), out);
    out = g.conv2d("output", out, conv("output"), plus(features));
    return g.pixel_shuffle(g.conv2d("up.0", out, conv("up.0"), {}), config_.scale);
}

// OSAG: the blocks, a 1x1 convolution plus the group's input, then ESA.
ValueId OmniSR::group(Graph& g, const std::string& key, ValueId x) const {
    ValueId y = x;
    for (int j = 0; j < config_.block_num; ++j)
        y = block(g, key + ".residual_layer." + std::to_string(j), y);
    const std::string last = key + ".residual_layer." + std::to_string(config_.block_num);
    y = g.conv2d(last, y, conv(last), plus(x));
    return esa(g, key + ".esa", y);
}

// OSA_Block's layers 0, 2, 4, 5, 6, 8, 10, 11, 12 (1, 3, 7, 9 are the window partitions,
// which the attention ops do themselves).
ValueId OmniSR::block(Graph& g, const std::string& key, ValueId x) const {
    const std::string l = key + ".layer.";
    x = mbconv(g, l + "0", x);
    x = window_attention(g, l + "2", x, PixelGroups::BLOCKS);
    x = gated_ffn(g, l + "4", x);
    x = channel_attention(g, l + "5", x, PixelGroups::BLOCKS);
    x = gated_ffn(g, l + "6", x);
    x = window_attention(g, l + "8", x, PixelGroups::GRID);
    x = gated_ffn(g, l + "10", x);
    x = channel_attention(g, l + "11", x, PixelGroups::GRID);
    return gated_ffn(g, l + "12", x);
}

// x + 1x1(SE(GELU(depthwise 3x3(GELU(1x1(x)))))), SE: x * sigmoid(W2 silu(W1 mean(x))).
ValueId OmniSR::mbconv(Graph& g, const std::string& key, ValueId x) const {
    const std::string fn = key + ".fn.";
    const ValueId a = g.conv2d(fn + "0", x, conv(fn + "0"), act_epilogue(Activation::GELU));
    const ValueId b = g.conv2d(fn + "2", a, depthwise(fn + "2"), act_epilogue(Activation::GELU));
    const ValueId squeezed =
        g.conv2d(fn + "4.gate.1", g.global_avg_pool(b), linear(fn + "4.gate.1.weight"),
                 act_epilogue(Activation::SILU));
    const ValueId gate = g.conv2d(fn + "4.gate.3", squeezed, linear(fn + "4.gate.3.weight"),
                                  act_epilogue(Activation::SIGMOID));
    return g.conv2d(fn + "5", g.mul(b, gate), conv(fn + "5"), plus(x));
}

// x + to_out(attention(to_qkv(LayerNorm(x)))) over the block or grid windows.
ValueId OmniSR::window_attention(Graph& g,
                                 const std::string& key,
                                 ValueId x,
                                 PixelGroups groups) const {
    const ValueId normed = g.layer_norm(key + ".norm", x, layer_norm(key, kLayerNormEps));
    const ValueId qkv = g.conv2d(key + ".fn.to_qkv", normed, linear(key + ".fn.to_qkv.weight"), {});
    WindowAttentionParams p;
    p.window = config_.window_size;
    p.groups = groups;
    p.heads = kHeads;
    p.scale = 1.0f / std::sqrt(static_cast<float>(config_.num_feat / kHeads));
    if (config_.pe)
        p.bias = position_bias_.at(key);
    const ValueId attended = g.window_attention(key + ".fn", qkv, std::move(p));
    return g.conv2d(key + ".fn.to_out.0", attended, linear(key + ".fn.to_out.0.weight"), plus(x));
}

// x + project_out(channel attention(dwconv(qkv(LayerNorm2d(x))))).
ValueId OmniSR::channel_attention(Graph& g,
                                  const std::string& key,
                                  ValueId x,
                                  PixelGroups groups) const {
    const std::string fn = key + ".fn.";
    const ValueId normed = g.layer_norm(key + ".norm", x, layer_norm(key, kLayerNorm2dEps));
    const ValueId qkv =
        g.conv2d(fn + "qkv_dwconv", g.conv2d(fn + "qkv", normed, conv(fn + "qkv"), {}),
                 depthwise(fn + "qkv_dwconv"), {});
    WindowAttentionParams p;
    p.window = config_.window_size;
    p.groups = groups;
    p.heads = kHeads;
    p.temperature = tensor(fn + "temperature", nullptr);
    const ValueId attended = g.channel_attention(key + ".fn", qkv, std::move(p));
    return g.conv2d(fn + "project_out", attended, conv(fn + "project_out"), plus(x));
}

// x + project_out(gelu(x1) * x2), [x1 | x2] = dwconv(project_in(LayerNorm2d(x))).
ValueId OmniSR::gated_ffn(Graph& g, const std::string& key, ValueId x) const {
    const std::string fn = key + ".fn.";
    const auto& [project_in, dwconv] = gated_.at(key);
    const ValueId normed = g.layer_norm(key + ".norm", x, layer_norm(key, kLayerNorm2dEps));
    const ValueId mixed =
        g.conv2d(fn + "dwconv", g.conv2d(fn + "project_in", normed, project_in, {}), dwconv, {});
    return g.conv2d(fn + "project_out", g.geglu(mixed), conv(fn + "project_out"), plus(x));
}

// x * sigmoid(conv4(conv_f(c1) + bilinear(conv3(maxpool7/3(conv2(c1)))))), c1 = conv1(x).
ValueId OmniSR::esa(Graph& g, const std::string& key, ValueId x) const {
    const Value in = g.value(x);
    const ValueId c1 = g.conv2d(key + ".conv1", x, conv(key + ".conv1"), {});
    ConvWeights down = conv(key + ".conv2");
    down.stride = 2;
    down.pad = 0;
    const ValueId pooled = g.max_pool(g.conv2d(key + ".conv2", c1, down, {}), 7, 3);
    const ValueId c3 = g.conv2d(key + ".conv3", pooled, conv(key + ".conv3"), {});
    const ValueId cf = g.conv2d(key + ".conv_f", c1, conv(key + ".conv_f"),
                                plus(g.resize_bilinear(c3, in.h, in.w)));
    const ValueId mask =
        g.conv2d(key + ".conv4", cf, conv(key + ".conv4"), act_epilogue(Activation::SIGMOID));
    return g.mul(x, mask);
}

}  // namespace kiln::engine
