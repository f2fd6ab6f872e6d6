// OmniSR detection (the published OmniSR.py and its OSAG/OSA/ESA modules). Every hyper-parameter
// comes from tensor shapes; the state dict must then hold exactly omnisr_tensors(config).
#include <cmath>
#include <set>

#include "core/error.h"
#include "weights/arch_detail.h"

namespace kiln::weights {

namespace {

using Shapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// A 2-d convolution's weight (and bias) under `key`.
void conv(Shapes& out, const std::string& key, int64_t o, int64_t i, int64_t k, bool bias) {
    out.push_back({key + ".weight", {o, i, k, k}});
    if (bias)
        out.push_back({key + ".bias", {o}});
}

void norm(Shapes& out, const std::string& key, int64_t c) {
    out.push_back({key + ".norm.weight", {c}});
    out.push_back({key + ".norm.bias", {c}});
}

// Gated_Conv_FeedForward at mult 1, no biases.
void gated_ffn(Shapes& out, const std::string& key, int64_t f) {
    norm(out, key, f);
    conv(out, key + ".fn.project_in", 2 * f, f, 1, false);
    conv(out, key + ".fn.dwconv", 2 * f, 1, 3, false);
    conv(out, key + ".fn.project_out", f, f, 1, false);
}

void window_attention(Shapes& out, const std::string& key, const OmniSRConfig& c) {
    const int64_t f = c.num_feat;
    norm(out, key, f);
    out.push_back({key + ".fn.to_qkv.weight", {3 * f, f}});
    out.push_back({key + ".fn.to_out.0.weight", {f, f}});
    if (c.pe) {
        const int64_t span = 2 * c.window_size - 1;
        out.push_back({key + ".fn.rel_pos_bias.weight", {span * span, 4}});
    }
}

void channel_attention(Shapes& out, const std::string& key, int64_t f) {
    norm(out, key, f);
    out.push_back({key + ".fn.temperature", {4, 1, 1}});
    conv(out, key + ".fn.qkv", 3 * f, f, 1, false);
    conv(out, key + ".fn.qkv_dwconv", 3 * f, 1, 3, false);
    conv(out, key + ".fn.project_out", f, f, 1, false);
}

void osa_block(Shapes& out, const std::string& key, const OmniSRConfig& c) {
    const int64_t f = c.num_feat;
    const int64_t se = f / 4;
    const std::string mb = key + ".layer.0.fn.";
    conv(out, mb + "0", f, f, 1, true);
    conv(out, mb + "2", f, 1, 3, true);
    out.push_back({mb + "4.gate.1.weight", {se, f}});
    out.push_back({mb + "4.gate.3.weight", {f, se}});
    conv(out, mb + "5", f, f, 1, true);
    window_attention(out, key + ".layer.2", c);
    gated_ffn(out, key + ".layer.4", f);
    channel_attention(out, key + ".layer.5", f);
    gated_ffn(out, key + ".layer.6", f);
    window_attention(out, key + ".layer.8", c);
    gated_ffn(out, key + ".layer.10", f);
    channel_attention(out, key + ".layer.11", f);
    gated_ffn(out, key + ".layer.12", f);
}

int count_prefixed(const StateDict& w, const std::string& before, const std::string& after) {
    int n = 0;
    while (w.count(before + std::to_string(n) + after))
        ++n;
    return n;
}

}  // namespace

Shapes omnisr_tensors(const OmniSRConfig& c) {
    const int64_t f = c.num_feat;
    const int64_t esa = std::max<int64_t>(f / 4, 16);
    Shapes out;
    conv(out, "input", f, c.num_in_ch, 3, true);
    for (int i = 0; i < c.res_num; ++i) {
        const std::string g = "residual_layer." + std::to_string(i);
        for (int j = 0; j < c.block_num; ++j)
            osa_block(out, g + ".residual_layer." + std::to_string(j), c);
        conv(out, g + ".residual_layer." + std::to_string(c.block_num), f, f, 1, true);
        conv(out, g + ".esa.conv1", esa, f, 1, true);
        conv(out, g + ".esa.conv_f", esa, esa, 1, true);
        conv(out, g + ".esa.conv2", esa, esa, 3, true);
        conv(out, g + ".esa.conv3", esa, esa, 3, true);
        conv(out, g + ".esa.conv4", f, esa, 1, true);
    }
    conv(out, "output", f, f, 3, true);
    conv(out, "up.0", static_cast<int64_t>(c.num_out_ch) * c.scale * c.scale, f, 3, true);
    return out;
}

namespace detail {

std::optional<DetectedModel> detect_omnisr(StateDict& weights) {
    if (!weights.count("input.weight") || !weights.count("up.0.weight") ||
        !weights.count("residual_layer.0.residual_layer.0.layer.0.fn.0.weight")) {
        return std::nullopt;
    }
    // Profiler counters some training scripts leave behind.
    std::erase_if(weights, [](const auto& kv) {
        return kv.first.ends_with("total_ops") || kv.first.ends_with("total_params");
    });
    OmniSRConfig c;
    const WeightTensor& input = weights.at("input.weight");
    if (input.shape.size() != 4 || input.shape[0] < 4 || input.shape[0] > 1024 ||
        input.shape[0] % 4 != 0) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "OmniSR: input.weight " + shape_string(input.shape) +
                              " is not a conv to a multiple of 4 channels");
    }
    c.num_feat = static_cast<int>(input.shape[0]);
    if (input.shape[1] != 3) {
        throw core::Error(
            core::ErrorCode::UNSUPPORTED,
            "OmniSR: " + std::to_string(input.shape[1]) + " input channels (only RGB)");
    }
    c.res_num = count_prefixed(weights, "residual_layer.", ".esa.conv1.weight");
    c.block_num =
        count_prefixed(weights, "residual_layer.0.residual_layer.", ".layer.0.fn.0.weight");
    if (c.res_num < 1 || c.res_num > 64 || c.block_num < 1 || c.block_num > 64) {
        throw core::Error(core::ErrorCode::BAD_FILE, "OmniSR: implausible group or block count");
    }
    const auto bias =
        weights.find("residual_layer.0.residual_layer.0.layer.2.fn.rel_pos_bias.weight");
    c.pe = bias != weights.end();
    if (c.pe) {
        const auto& shape = bias->second.shape;
        const int64_t span =
            shape.empty() ? 0 : std::llround(std::sqrt(static_cast<double>(shape[0])));
        if (shape.size() != 2 || span < 1 || span * span != shape[0] || span % 2 == 0 ||
            span > 127) {
            throw core::Error(core::ErrorCode::BAD_FILE, "OmniSR: the relative position bias " +
                                                             shape_string(shape) +
                                                             " is not [(2 ws - 1)^2, heads]");
        }
        c.window_size = static_cast<int>((span + 1) / 2);
        // The model expands each table to [heads, ws^2, ws^2] floats (ws 8: 64 KiB a layer);
        // a file must not make that huge on its word: ws <= 16 and 64 MiB in all.
        const int64_t n = int64_t{c.window_size} * c.window_size;
        const int64_t bytes = 2 * int64_t{c.res_num} * c.block_num * 4 * n * n * 4;
        if (c.window_size > 16 || bytes > (int64_t{64} << 20)) {
            throw core::Error(
                core::ErrorCode::UNSUPPORTED,
                "OmniSR: window " + std::to_string(c.window_size) + " with " +
                    std::to_string(c.res_num * c.block_num) +
                    " blocks (position bias tables over 64 MiB, or a window over 16)");
        }
    }
    const WeightTensor& up = weights.at("up.0.weight");
    const int64_t out = up.shape.empty() ? 0 : up.shape[0];
    const int r = static_cast<int>(std::lround(std::sqrt(static_cast<double>(out) / 3.0)));
    if (r < 1 || r > 8 || static_cast<int64_t>(r) * r * 3 != out) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "OmniSR: up.0 has " + std::to_string(out) + " outputs, not 3 x r^2");
    }
    c.scale = r;
    // Every tensor, with its shape, and nothing else.
    const Shapes expected = omnisr_tensors(c);
    std::set<std::string> names;
    for (const auto& [key, shape] : expected) {
        require_tensor(weights, key, shape);
        names.insert(key);
    }
    for (const auto& [key, t] : weights) {
        if (!names.count(key))
            throw core::Error(core::ErrorCode::BAD_FILE, "OmniSR: unexpected tensor '" + key + "'");
    }
    DetectedModel m;
    m.config = c;
    m.arch_name = "OmniSR";
    m.scale = c.scale;
    m.weights = std::move(weights);
    return m;
}

}  // namespace detail

}  // namespace kiln::weights
