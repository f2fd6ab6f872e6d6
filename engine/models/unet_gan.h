// waifu2x's UpConv7 and CUNet, and Real-CUGAN's UpCunet2x (the same network): generators of
// unpadded convolutions, so each consumes border() input pixels on every side and the
// pipeline pads the image by that much with the official programs' edge rule.
// Upstream: https://github.com/nagadomi/nunif/tree/master/waifu2x/models (upconv_7.py,
// cunet.py) and https://github.com/bilibili/ailab/blob/main/Real-CUGAN/upcunet_v3.py
#pragma once

#include "engine/models/model.h"
#include "weights/unet_gan_layers.h"

namespace kiln::engine {

// The weighted layers of a UNet/GAN table as graph weights and epilogues.
class UnetGanModel : public Model {
  protected:
    UnetGanModel(std::string arch,
                 int scale,
                 weights::StateDict weights,
                 std::vector<weights::GanLayer> layers);

    // Applies the table's layer `key` to x (convolution, transposed convolution or the 1x1
    // linear layer of squeeze-excitation) with its activation.
    ValueId layer(Graph& g, const std::string& key, ValueId x) const;
    // x * sigmoid(conv2(relu(conv1(mean(x))))): Real-CUGAN's SEBlock under `key`, its mean
    // from `means`.
    ValueId squeeze_excitation(Graph& g, const std::string& key, ValueId x, SeMeans& means) const;

  private:
    std::vector<weights::GanLayer> layers_;
};

class UpConv7 final : public UnetGanModel {
  public:
    UpConv7(const weights::UpConv7Config& config, weights::StateDict weights);
    int border() const override { return weights::upconv7_border(); }
    EdgeMode edge_mode() const override { return EdgeMode::REPLICATE; }
    AlphaRule alpha_rule() const override { return AlphaRule::BICUBIC; }

  protected:
    // x: [h + 14, w + 14, 3] -> [2h, 2w, 3]
    ValueId build(Graph& g, ValueId x) const override;
};

class CUNet final : public UnetGanModel {
  public:
    CUNet(const weights::CUNetConfig& config, weights::StateDict weights);
    int border() const override { return weights::cunet_border(config_); }
    // unet1 halves the (bordered) size once, unet2 twice: 2x and 4x need even windows, 1x
    // and 3x windows that are multiples of 4 (Real-CUGAN's program pads 3x tiles so too).
    int size_multiple() const override { return config_.scale == 2 || config_.scale == 4 ? 2 : 4; }
    // waifu2x-ncnn-vulkan repeats the edge pixels; realcugan-ncnn-vulkan (and Real-CUGAN's
    // PyTorch code) mirror the image without repeating them.
    EdgeMode edge_mode() const override {
        return config_.program == weights::CUNetConfig::Program::WAIFU2X ? EdgeMode::REPLICATE
                                                                         : EdgeMode::REFLECT;
    }
    // Both programs resize alpha bicubically instead of running it through the network.
    AlphaRule alpha_rule() const override { return AlphaRule::BICUBIC; }
    // realcugan-ncnn-vulkan shares the four SE blocks' means across tiles (its -c syncgap);
    // waifu2x-ncnn-vulkan does not.
    int shared_se_blocks() const override {
        return config_.program == weights::CUNetConfig::Program::REAL_CUGAN ? 4 : 0;
    }

  protected:
    // x: [h + 2b, w + 2b, 3] -> [s h, s w, 3]
    ValueId build(Graph& g, ValueId x) const override;
    ValueId build_sharing_means(Graph& g, ValueId x, SeMeans& means) const override;

  private:
    ValueId unet1(Graph& g, ValueId x, SeMeans& means) const;
    ValueId unet2(Graph& g, ValueId x, SeMeans& means) const;

    weights::CUNetConfig config_;
};

}  // namespace kiln::engine
