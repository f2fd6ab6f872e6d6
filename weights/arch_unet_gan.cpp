// UpConv7 and CUNet detection: every key of the layer table (weights/unet_gan_layers.h) with
// its exact shape, and nothing else. The input/output channel counts come from the first and
// last layers; CUNet's scale from unet1's bottom layer (a transposed convolution: 2x).
#include "core/error.h"
#include "weights/arch_detail.h"
#include "weights/unet_gan_layers.h"

namespace kiln::weights::detail {

namespace {

void require_layers(const StateDict& weights,
                    const std::vector<GanLayer>& layers,
                    const std::string& arch) {
    for (const GanLayer& l : layers) {
        require_tensor(weights, l.key + ".weight", l.weight_shape());
        require_tensor(weights, l.key + ".bias", {l.out});
    }
    if (weights.size() != 2 * layers.size()) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          arch + ": " + std::to_string(weights.size()) + " tensors where " +
                              std::to_string(2 * layers.size()) + " are expected");
    }
}

// Dimension d of the tensor under key, when it exists with `rank` dimensions and a
// plausible size; -1 otherwise.
int64_t dim_of(const StateDict& weights, const std::string& key, size_t rank, size_t d) {
    auto it = weights.find(key);
    if (it == weights.end() || it->second.shape.size() != rank)
        return -1;
    const int64_t v = it->second.shape[d];
    return v >= 1 && v <= 64 ? v : -1;
}

}  // namespace

std::optional<DetectedModel> detect_upconv7(StateDict& weights) {
    if (!weights.count("net.0.weight") || !weights.count("net.12.weight"))
        return std::nullopt;
    UpConv7Config c;
    c.num_in_ch = static_cast<int>(dim_of(weights, "net.0.weight", 4, 1));
    c.num_out_ch = static_cast<int>(dim_of(weights, "net.12.weight", 4, 1));
    if (c.num_in_ch < 1 || c.num_out_ch < 1)
        throw core::Error(core::ErrorCode::BAD_FILE, "UpConv7: implausible channel counts");
    require_layers(weights, upconv7_layers(c), "UpConv7");
    DetectedModel m;
    m.config = c;
    m.arch_name = "UpConv7";
    m.scale = 2;
    m.weights = std::move(weights);
    return m;
}

std::optional<DetectedModel> detect_cunet(StateDict& weights) {
    if (!weights.count("unet1.conv1.conv.0.weight") || !weights.count("unet2.conv5.weight"))
        return std::nullopt;
    CUNetConfig c;
    c.num_in_ch = static_cast<int>(dim_of(weights, "unet1.conv1.conv.0.weight", 4, 1));
    c.num_out_ch = static_cast<int>(dim_of(weights, "unet2.conv_bottom.weight", 4, 0));
    if (weights.count("conv_final.weight"))  // 4x: four output channels per pixel
        c.num_out_ch = static_cast<int>(dim_of(weights, "conv_final.weight", 4, 0) / 4);
    if (c.num_in_ch < 1 || c.num_out_ch < 1)
        throw core::Error(core::ErrorCode::BAD_FILE, "CUNet: implausible channel counts");
    // [64, out, 4, 4] for the transposed convolution, [out, 64, 3, 3] for a convolution.
    // unet1's bottom: a 4x4 (2x) or 5x5 (3x) transposed convolution, or a 3x3 convolution.
    const int64_t bottom = dim_of(weights, "unet1.conv_bottom.weight", 4, 3);
    c.scale = weights.count("conv_final.weight") ? 4 : bottom == 4 ? 2 : bottom == 5 ? 3 : 1;
    require_layers(weights, cunet_layers(c), "CUNet");
    DetectedModel m;
    m.config = c;
    m.arch_name = "CUNet";
    m.scale = c.scale;
    m.weights = std::move(weights);
    return m;
}

}  // namespace kiln::weights::detail
