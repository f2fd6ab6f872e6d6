// RRDBNet detection (ESRGAN / Real-ESRGAN, BasicSR basicsr/archs/rrdbnet_arch.py). Accepts
// BasicSR naming, the original ESRGAN "model.N" sequential naming and the RRDB_trunk naming,
// and renames the latter two to BasicSR's.
#include <algorithm>
#include <charconv>
#include <map>
#include <regex>

#include "core/error.h"
#include "weights/arch_detail.h"

namespace kiln::weights::detail {

namespace {

constexpr int64_t kMaxChannels = 1 << 16;

[[noreturn]] void unsupported(const std::string& what) {
    throw core::Error(core::ErrorCode::UNSUPPORTED, "RRDBNet: " + what);
}

// Channel counts as int; out-of-range values become 0 and are refused below.
int clamp_dim(int64_t d) {
    return d >= 1 && d <= kMaxChannels ? static_cast<int>(d) : 0;
}

int to_int(const std::string& s) {
    int v = -1;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

// model.0 conv_first; model.1.sub.{i}.RDB{k}.conv{j}.0 body; model.1.sub.{nb} conv_body; the
// remaining model.{n} convs in index order are conv_up1..{u}, conv_hr, conv_last (the indices
// shift with the scale, so they are ranked rather than hard-coded).
StateDict rename_sequential(StateDict in) {
    static const std::regex rdb(R"(model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias))");
    static const std::regex trunk(R"(model\.1\.sub\.(\d+)\.(weight|bias))");
    static const std::regex top(R"(model\.(\d+)\.(weight|bias))");
    StateDict out;
    std::map<int, std::vector<std::pair<std::string, WeightTensor>>> tops;
    std::smatch m;
    for (auto& [key, t] : in) {
        if (std::regex_match(key, m, rdb)) {
            out.emplace("body." + m[1].str() + ".rdb" + m[2].str() + ".conv" + m[3].str() + "." +
                            m[4].str(),
                        std::move(t));
        } else if (std::regex_match(key, m, trunk)) {
            out.emplace("conv_body." + m[2].str(), std::move(t));
        } else if (std::regex_match(key, m, top)) {
            tops[to_int(m[1].str())].emplace_back(m[2].str(), std::move(t));
        } else {
            out.emplace(key, std::move(t));  // left for the leftover check to report
        }
    }
    std::vector<std::string> names;
    if (!tops.empty() && tops.begin()->first == 0)
        names.push_back("conv_first");
    const size_t rest = tops.size() - names.size();
    for (size_t u = 1; rest >= 2 && u + 2 <= rest; ++u)
        names.push_back("conv_up" + std::to_string(u));
    if (rest >= 2)
        names.insert(names.end(), {"conv_hr", "conv_last"});
    if (names.size() != tops.size())
        unsupported("cannot map the model.N layers (" + std::to_string(tops.size()) + ")");
    size_t i = 0;
    for (auto& [index, tensors] : tops) {
        for (auto& [suffix, t] : tensors)
            out.emplace(names[i] + "." + suffix, std::move(t));
        ++i;
    }
    return out;
}

// xinntao/ESRGAN's later naming: RRDB_trunk, trunk_conv, upconv{n}, HRconv.
StateDict rename_trunk(StateDict in) {
    static const std::regex rdb(R"(RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias))");
    static const std::regex up(R"(upconv(\d+)\.(weight|bias))");
    StateDict out;
    std::smatch m;
    for (auto& [key, t] : in) {
        std::string k = key;
        if (std::regex_match(key, m, rdb)) {
            k = "body." + m[1].str() + ".rdb" + m[2].str() + ".conv" + m[3].str() + "." +
                m[4].str();
        } else if (std::regex_match(key, m, up)) {
            k = "conv_up" + m[1].str() + "." + m[2].str();
        } else if (key.starts_with("trunk_conv.")) {
            k = "conv_body." + key.substr(11);
        } else if (key.starts_with("HRconv.")) {
            k = "conv_hr." + key.substr(7);
        }
        out.emplace(k, std::move(t));
    }
    return out;
}

void require_conv(const StateDict& w, const std::string& name, int64_t out, int64_t in) {
    require_tensor(w, name + ".weight", {out, in, 3, 3});
    require_tensor(w, name + ".bias", {out});
}

}  // namespace

std::optional<DetectedModel> detect_rrdbnet(StateDict& weights) {
    StateDict w;
    if (weights.count("model.0.weight") && weights.count("model.1.sub.0.RDB1.conv1.0.weight")) {
        w = rename_sequential(std::move(weights));
    } else if (weights.count("conv_first.weight") &&
               weights.count("RRDB_trunk.0.RDB1.conv1.weight")) {
        w = rename_trunk(std::move(weights));
    } else if (weights.count("conv_first.weight") && weights.count("body.0.rdb1.conv1.weight")) {
        w = std::move(weights);
    } else {
        return std::nullopt;
    }
    const WeightTensor& first = w.at("conv_first.weight");
    if (first.shape.size() != 4) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "tensor 'conv_first.weight' has shape " + shape_string(first.shape));
    }
    if (first.shape[2] != 3 || first.shape[3] != 3)
        unsupported("conv kernel " + shape_string(first.shape) + " (only 3x3)");
    RRDBNetConfig c;
    c.num_feat = clamp_dim(first.shape[0]);
    c.num_in_ch = clamp_dim(first.shape[1]);
    const auto& grow = w.at("body.0.rdb1.conv1.weight").shape;
    if (grow.size() != 4)
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "tensor 'body.0.rdb1.conv1.weight' is not 4-D");
    c.num_grow_ch = clamp_dim(grow[0]);
    c.num_block = 0;
    while (w.count("body." + std::to_string(c.num_block) + ".rdb1.conv1.weight"))
        ++c.num_block;
    c.num_upsample = 0;
    while (w.count("conv_up" + std::to_string(c.num_upsample + 1) + ".weight"))
        ++c.num_upsample;
    const auto last = w.find("conv_last.weight");
    if (last == w.end() || last->second.shape.size() != 4) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "tensor 'conv_last.weight' is missing or not 4-D");
    }
    c.num_out_ch = clamp_dim(last->second.shape[0]);

    for (int dim : {c.num_feat, c.num_in_ch, c.num_out_ch, c.num_grow_ch}) {
        if (dim < 1 || dim > kMaxChannels)
            throw core::Error(core::ErrorCode::BAD_FILE, "RRDBNet: implausible channel count");
    }
    const int64_t nf = c.num_feat;
    const int64_t gc = c.num_grow_ch;
    require_conv(w, "conv_first", nf, c.num_in_ch);
    for (int b = 0; b < c.num_block; ++b) {
        for (int r = 1; r <= 3; ++r) {
            const std::string p =
                "body." + std::to_string(b) + ".rdb" + std::to_string(r) + ".conv";
            for (int j = 1; j <= 5; ++j)
                require_conv(w, p + std::to_string(j), j < 5 ? gc : nf, nf + (j - 1) * gc);
        }
    }
    require_conv(w, "conv_body", nf, nf);
    for (int u = 1; u <= c.num_upsample; ++u)
        require_conv(w, "conv_up" + std::to_string(u), nf, nf);
    require_conv(w, "conv_hr", nf, nf);
    require_conv(w, "conv_last", c.num_out_ch, nf);
    const size_t expected =
        2 * (1 + 15 * static_cast<size_t>(c.num_block) + 1 + c.num_upsample + 2);
    if (w.size() != expected) {
        for (const auto& [k, t] : w) {
            const bool known = k.starts_with("conv_") || k.starts_with("body.");
            if (!known)
                unsupported("unexpected tensor '" + k + "' " + shape_string(t.shape) +
                            " (e.g. an RRDBNet variant)");
        }
        unsupported("unexpected tensors (" + std::to_string(w.size()) + " present, " +
                    std::to_string(expected) + " expected)");
    }

    // BasicSR pixel-unshuffles the input for scales 2 and 1: 4x or 16x the channels.
    int unshuffle = 0;
    if (c.num_in_ch == c.num_out_ch)
        unshuffle = 1;
    if (c.num_in_ch == 4 * c.num_out_ch)
        unshuffle = 2;
    if (c.num_in_ch == 16 * c.num_out_ch)
        unshuffle = 4;
    if (unshuffle == 0) {
        unsupported(std::to_string(c.num_in_ch) + " input vs " + std::to_string(c.num_out_ch) +
                    " output channels");
    }
    const int up = 1 << c.num_upsample;
    if (c.num_upsample > 4 || up % unshuffle != 0)
        unsupported("scale 2^" + std::to_string(c.num_upsample) + " / " +
                    std::to_string(unshuffle));
    c.scale = up / unshuffle;

    DetectedModel m;
    m.config = c;
    m.arch_name = "RRDBNet";
    m.scale = c.scale;
    m.weights = std::move(w);
    return m;
}

}  // namespace kiln::weights::detail
