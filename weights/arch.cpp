#include "weights/arch.h"

#include "core/error.h"
#include "weights/arch_detail.h"

namespace kiln::weights {

namespace detail {

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

const WeightTensor& require_tensor(const StateDict& weights,
                                   const std::string& key,
                                   const std::vector<int64_t>& shape) {
    auto it = weights.find(key);
    if (it == weights.end()) {
        throw core::Error(
            core::ErrorCode::BAD_FILE,
            "tensor '" + key + "' is missing (expected shape " + shape_string(shape) + ")");
    }
    if (it->second.shape != shape) {
        throw core::Error(core::ErrorCode::BAD_FILE, "tensor '" + key + "' has shape " +
                                                         shape_string(it->second.shape) +
                                                         ", expected " + shape_string(shape));
    }
    return it->second;
}

}  // namespace detail

std::string model_family(const ArchConfig& config) {
    if (const auto* cunet = std::get_if<CUNetConfig>(&config))
        return cunet->program == CUNetConfig::Program::WAIFU2X ? "waifu2x" : "Real-CUGAN";
    if (std::holds_alternative<UpConv7Config>(config))
        return "waifu2x";
    if (std::holds_alternative<OmniSRConfig>(config))
        return "OmniSR";
    return "Real-ESRGAN";
}

DetectedModel detect_architecture(StateDict weights) {
    if (auto m = detail::detect_rrdbnet(weights))
        return std::move(*m);
    if (auto m = detail::detect_srvgg(weights))
        return std::move(*m);
    if (auto m = detail::detect_upconv7(weights))
        return std::move(*m);
    if (auto m = detail::detect_cunet(weights))
        return std::move(*m);
    if (auto m = detail::detect_omnisr(weights))
        return std::move(*m);
    std::string keys;
    int shown = 0;
    for (const auto& [k, v] : weights) {
        if (shown++ == 5)
            break;
        keys += (keys.empty() ? "" : ", ") + k + " " + detail::shape_string(v.shape);
    }
    throw core::Error(core::ErrorCode::UNSUPPORTED,
                      "unknown architecture: " + std::to_string(weights.size()) +
                          " tensors, first keys: " + keys);
}

}  // namespace kiln::weights
