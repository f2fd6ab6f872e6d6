#include "engine/models/unet_gan.h"

#include "core/error.h"

namespace kiln::engine {

using weights::GanLayer;

UnetGanModel::UnetGanModel(std::string arch,
                           int scale,
                           weights::StateDict weights,
                           std::vector<GanLayer> layers)
    : Model(std::move(arch), scale, std::move(weights)), layers_(std::move(layers)) {}

ValueId UnetGanModel::layer(Graph& g, const std::string& key, ValueId x) const {
    const GanLayer* found = nullptr;
    for (const GanLayer& l : layers_) {
        if (l.key == key)
            found = &l;
    }
    if (found == nullptr)
        throw core::Error(core::ErrorCode::INTERNAL, arch() + ": no layer '" + key + "'");
    ConvWeights w = conv(key);
    if (found->kind == GanLayer::Kind::DECONV)
        std::swap(w.in_channels, w.out_channels);  // stored [in, out, k, k]
    w.stride = found->stride;
    w.pad = found->pad;
    Epilogue e;
    switch (found->act) {
        case GanLayer::Act::NONE:
            break;
        case GanLayer::Act::LEAKY_RELU:
            e.act = Activation::LEAKY_RELU;
            e.alpha = 0.1f;
            break;
        case GanLayer::Act::RELU:
            e.act = Activation::RELU;
            break;
        case GanLayer::Act::SIGMOID:
            e.act = Activation::SIGMOID;
            break;
    }
    if (found->kind == GanLayer::Kind::DECONV)
        return g.deconv2d(key, x, std::move(w), std::move(e));
    return g.conv2d(key, x, std::move(w), std::move(e));
}

ValueId UnetGanModel::squeeze_excitation(Graph& g,
                                         const std::string& key,
                                         ValueId x,
                                         SeMeans& means) const {
    const ValueId squeezed = layer(g, key + ".conv1", means.next(g, x));  // [1, 1, c / 8]
    return g.mul(x, layer(g, key + ".conv2", squeezed));
}

UpConv7::UpConv7(const weights::UpConv7Config& config, weights::StateDict weights)
    : UnetGanModel("UpConv7", 2, std::move(weights), weights::upconv7_layers(config)) {}

ValueId UpConv7::build(Graph& g, ValueId x) const {
    for (int i = 0; i <= 12; i += 2)
        x = layer(g, "net." + std::to_string(i), x);
    return x;
}

CUNet::CUNet(const weights::CUNetConfig& config, weights::StateDict weights)
    : UnetGanModel("CUNet", config.scale, std::move(weights), weights::cunet_layers(config)),
      config_(config) {}

namespace {

// The centre of x, `by` pixels off every side (Real-CUGAN's F.pad(x, (-by,) * 4)).
ValueId shrink(Graph& g, ValueId x, int by) {
    const Value v = g.value(x);
    return g.crop(x, by, by, v.h - 2 * by, v.w - 2 * by);
}

}  // namespace

// x [n] -> [2n - 32] (2x), [3n - 44] (3x) or [n - 16] (1x).
ValueId CUNet::unet1(Graph& g, ValueId x, SeMeans& means) const {
    const ValueId x1 = layer(g, "unet1.conv1.conv.2", layer(g, "unet1.conv1.conv.0", x));
    ValueId x2 = layer(g, "unet1.conv1_down", x1);
    x2 = layer(g, "unet1.conv2.conv.2", layer(g, "unet1.conv2.conv.0", x2));
    x2 = layer(g, "unet1.conv2_up", squeeze_excitation(g, "unet1.conv2.seblock", x2, means));
    const ValueId x3 = layer(g, "unet1.conv3", g.add(shrink(g, x1, 4), x2));
    return layer(g, "unet1.conv_bottom", x3);
}

// x [m] -> [m - 40]
ValueId CUNet::unet2(Graph& g, ValueId x, SeMeans& means) const {
    const ValueId x1 = layer(g, "unet2.conv1.conv.2", layer(g, "unet2.conv1.conv.0", x));
    ValueId x2 = layer(g, "unet2.conv1_down", x1);
    x2 = layer(g, "unet2.conv2.conv.2", layer(g, "unet2.conv2.conv.0", x2));
    x2 = squeeze_excitation(g, "unet2.conv2.seblock", x2, means);
    ValueId x3 = layer(g, "unet2.conv2_down", x2);
    x3 = layer(g, "unet2.conv3.conv.2", layer(g, "unet2.conv3.conv.0", x3));
    x3 = layer(g, "unet2.conv3_up", squeeze_excitation(g, "unet2.conv3.seblock", x3, means));
    ValueId x4 = g.add(shrink(g, x2, 4), x3);
    x4 = layer(g, "unet2.conv4.conv.2", layer(g, "unet2.conv4.conv.0", x4));
    x4 = layer(g, "unet2.conv4_up", squeeze_excitation(g, "unet2.conv4.seblock", x4, means));
    const ValueId x5 = layer(g, "unet2.conv5", g.add(shrink(g, x1, 16), x4));
    return layer(g, "unet2.conv_bottom", x5);
}

ValueId CUNet::build(Graph& g, ValueId x) const {
    SeMeans own;  // every block computes its mean from the window
    return build_sharing_means(g, x, own);
}

ValueId CUNet::build_sharing_means(Graph& g, ValueId x, SeMeans& means) const {
    const ValueId z = unet1(g, x, means);
    const ValueId y = g.add(shrink(g, z, 20), unet2(g, z, means));
    if (config_.scale != 4)
        return y;
    // UpCunet4x: [2m, 2m, 64] -> 3x3 -> crop 1 -> shuffle: [4h, 4w, 3], plus the window's
    // own pixels (the input without its border) upsampled by 4, nearest.
    const ValueId rgb = g.pixel_shuffle(shrink(g, layer(g, "conv_final", y), 1), 2);
    return g.add(rgb, g.upsample_nearest(shrink(g, x, border()), 4));
}

}  // namespace kiln::engine
