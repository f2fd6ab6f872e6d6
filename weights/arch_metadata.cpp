#include "weights/arch_metadata.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_depth.h"

namespace kiln::weights {

namespace {

using json = nlohmann::json;

const char* act_name(SRVGGNetCompactConfig::Act act) {
    switch (act) {
        case SRVGGNetCompactConfig::Act::RELU:
            return "relu";
        case SRVGGNetCompactConfig::Act::PRELU:
            return "prelu";
        case SRVGGNetCompactConfig::Act::LEAKY_RELU:
            return "leaky_relu";
    }
    return "";
}

json config_json(const ArchConfig& config) {
    if (const auto* c = std::get_if<RRDBNetConfig>(&config)) {
        return {{"num_in_ch", c->num_in_ch},      {"num_out_ch", c->num_out_ch},
                {"num_feat", c->num_feat},        {"num_block", c->num_block},
                {"num_grow_ch", c->num_grow_ch},  {"scale", c->scale},
                {"num_upsample", c->num_upsample}};
    }
    if (const auto* c = std::get_if<SRVGGNetCompactConfig>(&config)) {
        return {{"num_in_ch", c->num_in_ch}, {"num_out_ch", c->num_out_ch},
                {"num_feat", c->num_feat},   {"num_conv", c->num_conv},
                {"upscale", c->upscale},     {"act", act_name(c->act)}};
    }
    if (const auto* c = std::get_if<UpConv7Config>(&config))
        return {{"num_in_ch", c->num_in_ch}, {"num_out_ch", c->num_out_ch}};
    if (const auto* c = std::get_if<OmniSRConfig>(&config)) {
        return {{"num_in_ch", c->num_in_ch},
                {"num_out_ch", c->num_out_ch},
                {"num_feat", c->num_feat},
                {"res_num", c->res_num},
                {"block_num", c->block_num},
                {"window_size", c->window_size},
                {"pe", c->pe},
                {"scale", c->scale}};
    }
    const auto& c = std::get<CUNetConfig>(config);
    return {{"num_in_ch", c.num_in_ch},
            {"num_out_ch", c.num_out_ch},
            {"scale", c.scale},
            {"program", c.program == CUNetConfig::Program::WAIFU2X ? "waifu2x" : "real-cugan"}};
}

[[noreturn]] void bad(const std::string& what) {
    throw core::Error(core::ErrorCode::BAD_FILE, "kiln architecture metadata: " + what);
}

const std::string& field(const std::map<std::string, std::string>& m, const std::string& key) {
    auto it = m.find(key);
    if (it == m.end())
        bad("'" + key + "' is missing");
    return it->second;
}

}  // namespace

std::map<std::string, std::string> arch_metadata(const DetectedModel& model) {
    return {{"kiln.arch", model.arch_name},
            {"kiln.config", config_json(model.config).dump()},
            {"kiln.scale", std::to_string(model.scale)},
            {"kiln.output_resize", json(model.output_resize).dump()}};
}

void apply_arch_metadata(DetectedModel& model, const std::map<std::string, std::string>& metadata) {
    if (!metadata.count("kiln.arch"))
        return;
    const std::string& arch = field(metadata, "kiln.arch");
    if (arch != model.arch_name)
        bad("it says " + arch + ", the tensors are " + model.arch_name + "'s");
    const std::string& text = field(metadata, "kiln.config");
    if (core::json_nesting_depth(text, core::max_json_depth) > core::max_json_depth)
        bad("'kiln.config' nests too deeply");
    const json config = json::parse(text, nullptr, false);
    if (!config.is_object())
        bad("'kiln.config' is not a JSON object");
    // What tensors cannot tell.
    if (auto* c = std::get_if<SRVGGNetCompactConfig>(&model.config)) {
        const std::string act = config.value("act", "");
        if (act == "relu")
            c->act = SRVGGNetCompactConfig::Act::RELU;
        else if (act == "leaky_relu")
            c->act = SRVGGNetCompactConfig::Act::LEAKY_RELU;
        else if (act != "prelu")
            bad("SRVGGNetCompact activation '" + act + "'");
    }
    if (auto* c = std::get_if<CUNetConfig>(&model.config)) {
        const std::string program = config.value("program", "");
        if (program == "waifu2x")
            c->program = CUNetConfig::Program::WAIFU2X;
        else if (program == "real-cugan")
            c->program = CUNetConfig::Program::REAL_CUGAN;
        else
            bad("CUNet program '" + program + "'");
    }
    if (auto* c = std::get_if<OmniSRConfig>(&model.config); c && !c->pe) {
        // Without the position bias tables the window size leaves no trace in the tensors.
        const json ws = config.value("window_size", json());
        if (!ws.is_number_integer() || ws.get<int>() < 1 || ws.get<int>() > 64)
            bad("OmniSR window_size is not an integer in [1, 64]");
        c->window_size = ws.get<int>();
    }
    const json resize = json::parse(field(metadata, "kiln.output_resize"), nullptr, false);
    if (!resize.is_number() || resize.get<double>() <= 0 || resize.get<double>() > 1)
        bad("'kiln.output_resize' is not in (0, 1]");
    model.output_resize = resize.get<float>();
    const std::string& scale_text = field(metadata, "kiln.scale");
    int scale = 0;
    try {
        scale = std::stoi(scale_text);
    } catch (const std::exception&) {
        bad("'kiln.scale' is not a number");
    }
    if (model.output_resize != 1.0f) {
        const float network = static_cast<float>(scale) / model.output_resize;
        if (scale < 1 || std::fabs(network - std::round(network)) > 1e-4f)
            bad("'kiln.scale' " + std::to_string(scale) + " and the resize disagree");
        model.scale = scale;
    }
    // Everything else must be what the tensors say.
    if (config != config_json(model.config))
        bad("'kiln.config' " + config.dump() + " disagrees with the tensors (" +
            config_json(model.config).dump() + ")");
    if (scale != model.scale)
        bad("'kiln.scale' " + std::to_string(scale) + ", the tensors give " +
            std::to_string(model.scale));
}

}  // namespace kiln::weights
