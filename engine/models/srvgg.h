// SRVGGNetCompact (Real-ESRGAN's compact VGG-style net: realesr-animevideov3, AniScale).
// Upstream: https://github.com/xinntao/Real-ESRGAN/blob/master/realesrgan/archs/srvgg_arch.py
#pragma once

#include "engine/models/model.h"

namespace kiln::engine {

class SRVGGNetCompact final : public Model {
  public:
    SRVGGNetCompact(const weights::SRVGGNetCompactConfig& config, weights::StateDict weights);

  protected:
    ValueId build(Graph& g, ValueId x) const override;

  private:
    Epilogue activation(int body_index) const;

    weights::SRVGGNetCompactConfig config_;
};

}  // namespace kiln::engine
