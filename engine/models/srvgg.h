// SRVGGNetCompact (Real-ESRGAN's compact VGG-style net: realesr-animevideov3, AniScale).
// Upstream: https://github.com/xinntao/Real-ESRGAN/blob/master/realesrgan/archs/srvgg_arch.py
#pragma once

#include "engine/models/model.h"

namespace kiln::engine {

class SRVGGNetCompact final : public Model {
  public:
    // scale: the image scale, config.upscale or less when the network's output is resized
    // down by bicubic interpolation (ncnn's realesr-animevideov3-x2/x3).
    SRVGGNetCompact(const weights::SRVGGNetCompactConfig& config,
                    int scale,
                    weights::StateDict weights);

  protected:
    ValueId build(Graph& g, ValueId x) const override;

  private:
    Epilogue activation(int body_index) const;

    weights::SRVGGNetCompactConfig config_;
};

}  // namespace kiln::engine
