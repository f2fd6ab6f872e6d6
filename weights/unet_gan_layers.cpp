#include "weights/unet_gan_layers.h"

namespace kiln::weights {

namespace {

using Kind = GanLayer::Kind;
using Act = GanLayer::Act;

void conv(std::vector<GanLayer>& v, std::string key, int in, int out, Act act = Act::LEAKY_RELU) {
    v.push_back({std::move(key), Kind::CONV, in, out, 3, 1, 0, act});
}

void down(std::vector<GanLayer>& v, std::string key, int c) {
    v.push_back({std::move(key), Kind::CONV, c, c, 2, 2, 0, Act::LEAKY_RELU});
}

void up(std::vector<GanLayer>& v, std::string key, int c) {
    v.push_back({std::move(key), Kind::DECONV, c, c, 2, 2, 0, Act::LEAKY_RELU});
}

// Real-CUGAN's UNetConv: two unpadded 3x3 convolutions, then squeeze-excitation (mean, 1x1
// to c / 8 with ReLU, 1x1 back with a sigmoid) when `se`.
void unet_conv(std::vector<GanLayer>& v,
               const std::string& key,
               int in,
               int mid,
               int out,
               bool se) {
    conv(v, key + ".conv.0", in, mid);
    conv(v, key + ".conv.2", mid, out);
    if (!se)
        return;
    v.push_back({key + ".seblock.conv1", Kind::LINEAR, out, out / 8, 1, 1, 0, Act::RELU});
    v.push_back({key + ".seblock.conv2", Kind::LINEAR, out / 8, out, 1, 1, 0, Act::SIGMOID});
}

}  // namespace

std::vector<int64_t> GanLayer::weight_shape() const {
    if (kind == Kind::DECONV)
        return {in, out, kernel, kernel};
    return {out, in, kernel, kernel};
}

std::vector<GanLayer> upconv7_layers(const UpConv7Config& config) {
    std::vector<GanLayer> v;
    const int widths[] = {16, 32, 64, 128, 128, 256};
    int in = config.num_in_ch;
    for (int i = 0; i < 6; ++i) {
        conv(v, "net." + std::to_string(2 * i), in, widths[i]);
        in = widths[i];
    }
    v.push_back({"net.12", Kind::DECONV, 256, config.num_out_ch, 4, 2, 3, Act::NONE});
    return v;
}

std::vector<GanLayer> cunet_layers(const CUNetConfig& config) {
    std::vector<GanLayer> v;
    // 4x: the UNets carry 64 channels between them, then a 3x3 convolution to 4 out
    // channels per pixel before the pixel shuffle.
    const int mid = config.scale == 4 ? 64 : config.num_out_ch;
    unet_conv(v, "unet1.conv1", config.num_in_ch, 32, 64, false);
    down(v, "unet1.conv1_down", 64);
    unet_conv(v, "unet1.conv2", 64, 128, 64, true);
    up(v, "unet1.conv2_up", 64);
    conv(v, "unet1.conv3", 64, 64);
    if (config.scale == 2 || config.scale == 4)
        v.push_back({"unet1.conv_bottom", Kind::DECONV, 64, mid, 4, 2, 3, Act::NONE});
    else if (config.scale == 3)
        v.push_back({"unet1.conv_bottom", Kind::DECONV, 64, mid, 5, 3, 2, Act::NONE});
    else
        conv(v, "unet1.conv_bottom", 64, mid, Act::NONE);
    unet_conv(v, "unet2.conv1", mid, 32, 64, false);
    down(v, "unet2.conv1_down", 64);
    unet_conv(v, "unet2.conv2", 64, 64, 128, true);
    down(v, "unet2.conv2_down", 128);
    unet_conv(v, "unet2.conv3", 128, 256, 128, true);
    up(v, "unet2.conv3_up", 128);
    unet_conv(v, "unet2.conv4", 128, 64, 64, true);
    up(v, "unet2.conv4_up", 64);
    conv(v, "unet2.conv5", 64, 64);
    conv(v, "unet2.conv_bottom", 64, mid, Act::NONE);
    if (config.scale == 4)
        conv(v, "conv_final", 64, 4 * config.num_out_ch, Act::NONE);
    return v;
}

int upconv7_border() {
    return 7;
}

// Output = scale * (input - 2 * border): 2x loses 72 output pixels (unet2's 40 and unet1's 32
// halved back to input pixels: 18 a side); 3x loses 84 (unet1's 14 input pixels and 2 output
// pixels, unet2's 40: 14 a side); 1x loses 16 in unet1 and 40 in unet2 (28 a side).
// 4x: 2x's 72 output pixels of the UNets at twice the scale, plus the final convolution's 2
// and its crop's 2 (times 2 after the shuffle): 19 a side.
int cunet_border(const CUNetConfig& config) {
    switch (config.scale) {
        case 2:
            return 18;
        case 3:
            return 14;
        case 4:
            return 19;
        default:
            return 28;
    }
}

}  // namespace kiln::weights
