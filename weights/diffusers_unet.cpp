#include "weights/diffusers_unet.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/error.h"
#include "core/json_depth.h"
#include "core/small_file.h"
#include "weights/safetensors.h"

namespace kiln::weights {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kLdmPrefix = "model.diffusion_model.";

[[noreturn]] void unsupported(const std::string& origin,
                              const std::string& field,
                              const std::string& why) {
    throw core::Error(core::ErrorCode::UNSUPPORTED,
                      origin + ": config field '" + field + "' " + why);
}

// Fields kiln implements only at one value (diffusers' default for SD 1.x/2.x UNets).
void check_fixed_fields(const json& j, const std::string& origin) {
    const std::vector<std::pair<const char*, json>> fixed = {
        {"center_input_sample", false},
        {"only_cross_attention", false},
        {"mid_block_type", "UNetMidBlock2DCrossAttn"},
        {"act_fn", "silu"},
        {"transformer_layers_per_block", 1},
        {"encoder_hid_dim", nullptr},
        {"encoder_hid_dim_type", nullptr},
        {"dual_cross_attention", false},
        {"class_embed_type", nullptr},
        {"addition_embed_type", nullptr},
        {"num_class_embeds", nullptr},
        {"upcast_attention", false},
        {"resnet_time_scale_shift", "default"},
        {"resnet_skip_time_act", false},
        {"resnet_out_scale_factor", 1.0},
        {"time_embedding_type", "positional"},
        {"time_embedding_dim", nullptr},
        {"time_embedding_act_fn", nullptr},
        {"timestep_post_act", nullptr},
        {"time_cond_proj_dim", nullptr},
        {"conv_in_kernel", 3},
        {"conv_out_kernel", 3},
        {"attention_type", "default"},
        {"mid_block_only_cross_attention", nullptr},
        {"cross_attention_norm", nullptr},
        {"downsample_padding", 1},
        {"mid_block_scale_factor", 1},
        {"class_embeddings_concat", false},
    };
    for (const auto& [name, value] : fixed) {
        const auto it = j.find(name);
        if (it == j.end())
            continue;
        // Numbers compare by value (1 == 1.0); dropout 0 is checked below.
        const bool same = it->is_number() && value.is_number()
                              ? it->get<double>() == value.get<double>()
                              : *it == value;
        if (!same) {
            unsupported(
                origin, name,
                "= " + it->dump() + " is not implemented (kiln supports " + value.dump() + ")");
        }
    }
}

int get_int(const json& j, const char* name, int fallback, const std::string& origin) {
    const auto it = j.find(name);
    if (it == j.end() || it->is_null())
        return fallback;
    if (!it->is_number_integer())
        throw core::Error(core::ErrorCode::BAD_FILE,
                          origin + ": '" + name + "' must be an integer");
    return it->get<int>();
}

std::vector<UNetBlockKind> block_kinds(const json& j,
                                       const char* name,
                                       const char* plain,
                                       const char* cross,
                                       const std::string& origin) {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_array())
        throw core::Error(core::ErrorCode::BAD_FILE, origin + ": '" + name + "' must be a list");
    std::vector<UNetBlockKind> kinds;
    for (const json& t : *it) {
        if (t == plain) {
            kinds.push_back(UNetBlockKind::PLAIN);
        } else if (t == cross) {
            kinds.push_back(UNetBlockKind::CROSS_ATTENTION);
        } else {
            unsupported(origin, name,
                        "has block type " + t.dump() + " (kiln implements " + plain + " and " +
                            cross + ")");
        }
    }
    return kinds;
}

std::vector<int> per_level(const json& value,
                           size_t levels,
                           const char* name,
                           const std::string& origin) {
    std::vector<int> out;
    if (value.is_number_integer()) {
        out.assign(levels, value.get<int>());
    } else if (value.is_array() && value.size() == levels) {
        for (const json& v : value) {
            if (!v.is_number_integer())
                throw core::Error(core::ErrorCode::BAD_FILE,
                                  origin + ": '" + name + "' must hold integers");
            out.push_back(v.get<int>());
        }
    } else {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          origin + ": '" + name + "' must be an integer or one per block");
    }
    return out;
}

void validate(const UNetConfig& c, const std::string& origin) {
    const size_t n = c.block_out_channels.size();
    if (n < 1 || n > 8)
        throw core::Error(core::ErrorCode::BAD_FILE,
                          origin + ": block_out_channels needs 1 to 8 entries");
    if (c.down_blocks.size() != n || c.up_blocks.size() != n) {
        throw core::Error(
            core::ErrorCode::BAD_FILE,
            origin + ": down_block_types and up_block_types need one entry per block");
    }
    for (size_t i = 0; i < n; ++i) {
        if (c.down_blocks[i] != c.up_blocks[n - 1 - i]) {
            unsupported(origin, "up_block_types",
                        "must mirror down_block_types (attention on the same levels)");
        }
    }
    auto positive = [&](int v, const char* name, int max) {
        if (v < 1 || v > max)
            throw core::Error(core::ErrorCode::BAD_FILE, origin + ": '" + name + "' out of range");
    };
    positive(c.in_channels, "in_channels", 64);
    positive(c.out_channels, "out_channels", 64);
    positive(c.layers_per_block, "layers_per_block", 8);
    positive(c.norm_num_groups, "norm_num_groups", 4096);
    positive(c.cross_attention_dim, "cross_attention_dim", 1 << 14);
    for (size_t i = 0; i < n; ++i) {
        positive(c.block_out_channels[i], "block_out_channels", 1 << 14);
        if (c.block_out_channels[i] % c.norm_num_groups != 0) {
            throw core::Error(
                core::ErrorCode::BAD_FILE,
                origin + ": norm_num_groups must divide every block_out_channels entry");
        }
        positive(c.heads[i], "attention heads", 1024);
        if (c.block_out_channels[i] % c.heads[i] != 0) {
            throw core::Error(core::ErrorCode::BAD_FILE,
                              origin + ": the head count must divide the block's channels");
        }
    }
}

// (diffusers prefix, LDM prefix without "model.diffusion_model.") for every module.
std::vector<std::pair<std::string, std::string>> module_prefixes(const UNetConfig& c) {
    std::vector<std::pair<std::string, std::string>> pairs = {
        {"time_embedding.linear_1.", "time_embed.0."},
        {"time_embedding.linear_2.", "time_embed.2."},
        {"conv_in.", "input_blocks.0.0."},
        {"conv_norm_out.", "out.0."},
        {"conv_out.", "out.2."},
        {"mid_block.resnets.0.", "middle_block.0."},
        {"mid_block.attentions.0.", "middle_block.1."},
        {"mid_block.resnets.1.", "middle_block.2."},
    };
    const int lpb = c.layers_per_block;
    const int n = c.levels();
    const auto s = [](int v) { return std::to_string(v); };
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < lpb; ++j) {
            const int k = (lpb + 1) * i + j + 1;
            pairs.emplace_back("down_blocks." + s(i) + ".resnets." + s(j) + ".",
                               "input_blocks." + s(k) + ".0.");
            if (c.down_blocks[static_cast<size_t>(i)] == UNetBlockKind::CROSS_ATTENTION) {
                pairs.emplace_back("down_blocks." + s(i) + ".attentions." + s(j) + ".",
                                   "input_blocks." + s(k) + ".1.");
            }
        }
        if (i != n - 1) {
            pairs.emplace_back("down_blocks." + s(i) + ".downsamplers.0.conv.",
                               "input_blocks." + s((lpb + 1) * (i + 1)) + ".0.op.");
        }
    }
    for (int i = 0; i < n; ++i) {
        const bool attn = c.up_blocks[static_cast<size_t>(i)] == UNetBlockKind::CROSS_ATTENTION;
        for (int j = 0; j < lpb + 1; ++j) {
            const int k = (lpb + 1) * i + j;
            pairs.emplace_back("up_blocks." + s(i) + ".resnets." + s(j) + ".",
                               "output_blocks." + s(k) + ".0.");
            if (attn) {
                pairs.emplace_back("up_blocks." + s(i) + ".attentions." + s(j) + ".",
                                   "output_blocks." + s(k) + ".1.");
            }
        }
        if (i != n - 1) {
            pairs.emplace_back(
                "up_blocks." + s(i) + ".upsamplers.0.",
                "output_blocks." + s((lpb + 1) * i + lpb) + "." + (attn ? "2." : "1."));
        }
    }
    return pairs;
}

// ResnetBlock2D's inner names: (diffusers, LDM).
const std::pair<const char*, const char*> kResnetNames[] = {
    {"norm1.", "in_layers.0."},          {"conv1.", "in_layers.2."},
    {"time_emb_proj.", "emb_layers.1."}, {"norm2.", "out_layers.0."},
    {"conv2.", "out_layers.3."},         {"conv_shortcut.", "skip_connection."},
};

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

// The folder holding config.json: `dir` or `dir/unet`.
fs::path unet_dir(const fs::path& dir) {
    std::error_code ec;
    if (fs::is_regular_file(dir / "config.json", ec))
        return dir;
    if (fs::is_regular_file(dir / "unet" / "config.json", ec))
        return dir / "unet";
    return {};
}

fs::path weights_file(const fs::path& dir) {
    std::error_code ec;
    for (const char* name :
         {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"}) {
        if (fs::is_regular_file(dir / name, ec))
            return dir / name;
    }
    return {};
}

int64_t dim(const StateDict& w, const std::string& key, size_t axis) {
    const auto it = w.find(key);
    if (it == w.end() || it->second.shape.size() <= axis)
        throw core::Error(core::ErrorCode::BAD_FILE, "LDM checkpoint lacks '" + key + "'");
    return it->second.shape[axis];
}

}  // namespace

UNetConfig parse_unet_config(const std::string& json_text, const std::string& origin) {
    if (core::json_nesting_depth(json_text, core::max_json_depth) > core::max_json_depth) {
        throw core::Error(
            core::ErrorCode::BAD_FILE,
            origin + ": nests deeper than " + std::to_string(core::max_json_depth) + " levels");
    }
    json j;
    try {
        j = json::parse(json_text);
    } catch (const json::exception& e) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          origin + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object())
        throw core::Error(core::ErrorCode::BAD_FILE, origin + ": not a JSON object");
    if (const auto it = j.find("_class_name"); it != j.end() && *it != "UNet2DConditionModel") {
        unsupported(origin, "_class_name",
                    "= " + it->dump() + " (kiln reads UNet2DConditionModel)");
    }
    check_fixed_fields(j, origin);

    UNetConfig c;
    c.in_channels = get_int(j, "in_channels", 4, origin);
    c.out_channels = get_int(j, "out_channels", 4, origin);
    c.layers_per_block = get_int(j, "layers_per_block", 2, origin);
    c.norm_num_groups = get_int(j, "norm_num_groups", 32, origin);
    c.sample_size = get_int(j, "sample_size", 64, origin);
    if (const auto it = j.find("layers_per_block"); it != j.end() && !it->is_number_integer())
        unsupported(origin, "layers_per_block", "must be one integer for every block");
    const auto channels = j.find("block_out_channels");
    if (channels == j.end())
        throw core::Error(core::ErrorCode::BAD_FILE, origin + ": 'block_out_channels' is missing");
    c.block_out_channels = per_level(*channels, channels->is_array() ? channels->size() : 1,
                                     "block_out_channels", origin);
    const size_t n = c.block_out_channels.size();
    c.down_blocks =
        block_kinds(j, "down_block_types", "DownBlock2D", "CrossAttnDownBlock2D", origin);
    c.up_blocks = block_kinds(j, "up_block_types", "UpBlock2D", "CrossAttnUpBlock2D", origin);
    if (const auto it = j.find("norm_eps"); it != j.end() && it->is_number())
        c.norm_eps = it->get<float>();
    if (const auto it = j.find("cross_attention_dim"); it != j.end()) {
        if (!it->is_number_integer())
            unsupported(origin, "cross_attention_dim", "must be one integer");
        c.cross_attention_dim = it->get<int>();
    }
    if (const auto it = j.find("use_linear_projection"); it != j.end() && it->is_boolean())
        c.use_linear_projection = it->get<bool>();
    if (const auto it = j.find("flip_sin_to_cos"); it != j.end() && it->is_boolean())
        c.flip_sin_to_cos = it->get<bool>();
    if (const auto it = j.find("freq_shift"); it != j.end() && it->is_number())
        c.freq_shift = it->get<float>();
    // diffusers' naming: with num_attention_heads unset, attention_head_dim holds the number
    // of heads (SD 1.x: 8; SD 2.x: [5, 10, 20, 20] with 64-wide heads).
    const auto num_heads = j.find("num_attention_heads");
    const auto head_dim = j.find("attention_head_dim");
    if (num_heads != j.end() && !num_heads->is_null()) {
        c.heads = per_level(*num_heads, n, "num_attention_heads", origin);
    } else if (head_dim != j.end() && !head_dim->is_null()) {
        c.heads = per_level(*head_dim, n, "attention_head_dim", origin);
    } else {
        c.heads.assign(n, 8);
    }
    validate(c, origin);
    return c;
}

std::string ldm_key_to_diffusers(const std::string& ldm_key, const UNetConfig& config) {
    for (const auto& [diffusers, ldm] : module_prefixes(config)) {
        if (!starts_with(ldm_key, ldm))
            continue;
        std::string rest = ldm_key.substr(ldm.size());
        if (diffusers.find(".resnets.") != std::string::npos) {
            bool renamed = false;
            for (const auto& [d, l] : kResnetNames) {
                if (starts_with(rest, l)) {
                    rest = d + rest.substr(std::string(l).size());
                    renamed = true;
                    break;
                }
            }
            if (!renamed)
                return {};
        }
        return diffusers + rest;
    }
    return {};
}

bool is_ldm_state_dict(const StateDict& weights) {
    return std::any_of(weights.begin(), weights.end(),
                       [](const auto& kv) { return starts_with(kv.first, kLdmPrefix); });
}

StateDict to_diffusers_names(StateDict weights, const UNetConfig& config) {
    const bool ldm = is_ldm_state_dict(weights);
    StateDict out;
    for (auto& [key, tensor] : weights) {
        std::string name;
        if (ldm) {
            if (!starts_with(key, kLdmPrefix))
                continue;  // VAE, text encoder, EMA bookkeeping
            name = ldm_key_to_diffusers(key.substr(std::string(kLdmPrefix).size()), config);
            if (name.empty()) {
                throw core::Error(core::ErrorCode::BAD_FILE,
                                  "LDM key '" + key + "' does not fit the UNet's configuration");
            }
        } else {
            name = starts_with(key, "unet.") ? key.substr(5) : key;
        }
        // Old attention names.
        for (const auto& [from, to] : std::initializer_list<std::pair<const char*, const char*>>{
                 {".query.", ".to_q."},
                 {".key.", ".to_k."},
                 {".value.", ".to_v."},
                 {".proj_attn.", ".to_out.0."}}) {
            const size_t at = name.find(from);
            if (at != std::string::npos)
                name.replace(at, std::string(from).size(), to);
        }
        // Linear projections of SD 2.x are 1x1 convolutions with the same numbers.
        const bool proj = name.find(".proj_in.weight") != std::string::npos ||
                          name.find(".proj_out.weight") != std::string::npos;
        if (proj && tensor.shape.size() == 2)
            tensor.shape = {tensor.shape[0], tensor.shape[1], 1, 1};
        out[name] = std::move(tensor);
    }
    return out;
}

UNetConfig derive_unet_config(const StateDict& w) {
    const auto key = [](const std::string& k) { return std::string(kLdmPrefix) + k; };
    auto has = [&](const std::string& k) { return w.count(key(k)) > 0; };
    UNetConfig c;
    c.in_channels = static_cast<int>(dim(w, key("input_blocks.0.0.weight"), 1));
    c.out_channels = static_cast<int>(dim(w, key("out.2.weight"), 0));
    // The first downsampler sits right after the first level's resnets.
    int lpb = 1;
    while (lpb <= 8 && !has("input_blocks." + std::to_string(lpb + 1) + ".0.op.weight"))
        ++lpb;
    int max_block = 0;
    while (has("input_blocks." + std::to_string(max_block + 1) + ".0.in_layers.0.weight") ||
           has("input_blocks." + std::to_string(max_block + 1) + ".0.op.weight"))
        ++max_block;
    if (lpb > 8 || (max_block + 1) % (lpb + 1) != 0)
        throw core::Error(core::ErrorCode::BAD_FILE,
                          "LDM checkpoint: cannot tell the UNet's block layout");
    c.layers_per_block = lpb;
    const int n = (max_block + 1) / (lpb + 1);
    c.block_out_channels.clear();
    for (int i = 0; i < n; ++i) {
        const std::string block = "input_blocks." + std::to_string((lpb + 1) * i + 1);
        c.block_out_channels.push_back(
            static_cast<int>(dim(w, key(block + ".0.out_layers.3.weight"), 0)));
        c.down_blocks.push_back(has(block + ".1.norm.weight") ? UNetBlockKind::CROSS_ATTENTION
                                                              : UNetBlockKind::PLAIN);
    }
    c.up_blocks.assign(c.down_blocks.rbegin(), c.down_blocks.rend());
    const std::string attn = "middle_block.1.";
    c.cross_attention_dim =
        static_cast<int>(dim(w, key(attn + "transformer_blocks.0.attn2.to_k.weight"), 1));
    c.use_linear_projection = w.at(key(attn + "proj_in.weight")).shape.size() == 2;
    // Heads do not show in shapes: SD 2.x (linear projections) uses 64-wide heads, SD 1.x 8.
    // (narrower toy models: the largest power of two up to 8 dividing the width).
    for (int ch : c.block_out_channels) {
        int heads = 8;
        while (ch % heads != 0)
            heads /= 2;
        c.heads.push_back(c.use_linear_projection && ch % 64 == 0 ? ch / 64 : heads);
    }
    // Groups do not show either: SD's 32, or the largest power of two dividing every width.
    c.norm_num_groups = 32;
    for (int ch : c.block_out_channels) {
        while (ch % c.norm_num_groups != 0)
            c.norm_num_groups /= 2;
    }
    validate(c, "LDM checkpoint");
    return c;
}

bool is_unet_folder(const fs::path& dir) {
    const fs::path d = unet_dir(dir);
    if (d.empty() || weights_file(d).empty())
        return false;
    try {
        const std::string text = core::read_small_file(d / "config.json");
        if (core::json_nesting_depth(text, core::max_json_depth) > core::max_json_depth)
            return false;
        const json j = json::parse(text);
        return j.is_object() && j.value("_class_name", "") == "UNet2DConditionModel";
    } catch (const std::exception&) {
        return false;
    }
}

UNetFiles load_unet(const fs::path& path) {
    std::error_code ec;
    UNetFiles files;
    if (fs::is_directory(path, ec)) {
        const fs::path dir = unet_dir(path);
        if (dir.empty())
            throw core::Error(core::ErrorCode::NOT_FOUND,
                              path.string() + ": no config.json (or unet/config.json)");
        const fs::path weights = weights_file(dir);
        if (weights.empty()) {
            throw core::Error(core::ErrorCode::NOT_FOUND,
                              dir.string() + ": no diffusion_pytorch_model.safetensors");
        }
        files.config = parse_unet_config(core::read_small_file(dir / "config.json"),
                                         (dir / "config.json").string());
        files.weights = to_diffusers_names(load_safetensors(weights), files.config);
        return files;
    }
    StateDict weights = load_safetensors(path);
    if (!is_ldm_state_dict(weights)) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          path.string() +
                              ": a single-file UNet must be an LDM checkpoint "
                              "(model.diffusion_model.* keys); give a diffusers folder "
                              "with config.json otherwise");
    }
    fs::path config = path;
    config.replace_extension(".json");
    files.config = fs::is_regular_file(config, ec)
                       ? parse_unet_config(core::read_small_file(config), config.string())
                       : derive_unet_config(weights);
    files.weights = to_diffusers_names(std::move(weights), files.config);
    return files;
}

}  // namespace kiln::weights
