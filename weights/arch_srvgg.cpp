// SRVGGNetCompact detection (Real-ESRGAN realesrgan/archs/srvgg_arch.py): body.{2k} convs,
// body.{2k+1} activations (PReLU has a [num_feat] weight; ReLU/LeakyReLU have none).
#include <charconv>
#include <cmath>
#include <set>

#include "core/error.h"
#include "weights/arch_detail.h"

namespace kiln::weights::detail {

namespace {

// "body.{n}.weight" / "body.{n}.bias" → n, else -1.
int body_index(const std::string& key) {
    if (!key.starts_with("body."))
        return -1;
    const size_t dot = key.find('.', 5);
    if (dot == std::string::npos)
        return -1;
    const std::string suffix = key.substr(dot + 1);
    if (suffix != "weight" && suffix != "bias")
        return -1;
    int v = -1;
    auto [p, ec] = std::from_chars(key.data() + 5, key.data() + dot, v);
    return ec == std::errc() && p == key.data() + dot ? v : -1;
}

}  // namespace

std::optional<DetectedModel> detect_srvgg(StateDict& weights) {
    std::set<int> convs;
    std::set<int> prelus;
    for (const auto& [k, t] : weights) {
        const int n = body_index(k);
        if (n < 0)
            return std::nullopt;
        if (k.ends_with(".weight"))
            (t.shape.size() == 4 ? convs : prelus).insert(n);
    }
    if (!convs.count(0) || convs.size() < 2)
        return std::nullopt;
    const WeightTensor& first = weights.at("body.0.weight");
    if (first.shape[2] != 3 || first.shape[3] != 3) {
        throw core::Error(
            core::ErrorCode::UNSUPPORTED,
            "SRVGGNetCompact: conv kernel " + shape_string(first.shape) + " (only 3x3)");
    }
    for (int64_t d : {first.shape[0], first.shape[1]}) {
        if (d < 1 || d > (1 << 16))
            throw core::Error(core::ErrorCode::BAD_FILE,
                              "SRVGGNetCompact: implausible channel count");
    }
    SRVGGNetCompactConfig c;
    c.num_feat = static_cast<int>(first.shape[0]);
    c.num_in_ch = static_cast<int>(first.shape[1]);
    c.num_conv = static_cast<int>(convs.size()) - 2;
    const int last = 2 * (c.num_conv + 1);
    // Without PReLU weights ReLU and LeakyReLU(0.1) cannot be told apart; Real-ESRGAN's
    // released non-PReLU models are rare, so assume LeakyReLU (callers with a graph override).
    c.act =
        prelus.empty() ? SRVGGNetCompactConfig::Act::LEAKY_RELU : SRVGGNetCompactConfig::Act::PRELU;
    const auto& last_w = weights.find("body." + std::to_string(last) + ".weight");
    if (last_w == weights.end() || last_w->second.shape.size() != 4) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "SRVGGNetCompact: tensor 'body." + std::to_string(last) +
                              ".weight' (last conv) is missing; conv indices are not 0, 2, 4, ...");
    }
    // Output channels are assumed equal to the input's, as in Real-ESRGAN's released models.
    c.num_out_ch = c.num_in_ch;
    const int64_t shuffled = last_w->second.shape[0];
    if (shuffled < 1 || shuffled > (1 << 20))
        throw core::Error(core::ErrorCode::BAD_FILE, "SRVGGNetCompact: implausible last conv");
    const int r =
        static_cast<int>(std::lround(std::sqrt(static_cast<double>(shuffled) / c.num_out_ch)));
    if (r < 1 || static_cast<int64_t>(r) * r * c.num_out_ch != shuffled) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "SRVGGNetCompact: last conv has " + std::to_string(shuffled) +
                              " channels, not " + std::to_string(c.num_out_ch) + " x r^2");
    }
    c.upscale = r;
    const int64_t nf = c.num_feat;
    for (int k = 0; k <= c.num_conv + 1; ++k) {
        const std::string p = "body." + std::to_string(2 * k);
        const int64_t out = k == c.num_conv + 1 ? shuffled : nf;
        require_tensor(weights, p + ".weight", {out, k == 0 ? c.num_in_ch : nf, 3, 3});
        require_tensor(weights, p + ".bias", {out});
        if (k <= c.num_conv && !prelus.empty()) {
            require_tensor(weights, "body." + std::to_string(2 * k + 1) + ".weight", {nf});
        }
    }
    const size_t expected = 2 * (static_cast<size_t>(c.num_conv) + 2) + prelus.size();
    if (weights.size() != expected ||
        (!prelus.empty() && prelus.size() != static_cast<size_t>(c.num_conv) + 1)) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "SRVGGNetCompact: " + std::to_string(weights.size()) +
                              " tensors where the layout implies " + std::to_string(expected));
    }
    DetectedModel m;
    m.config = c;
    m.arch_name = "SRVGGNetCompact";
    m.scale = c.upscale;
    m.weights = std::move(weights);
    return m;
}

}  // namespace kiln::weights::detail
