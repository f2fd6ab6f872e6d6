// RRDBNet, the ESRGAN / Real-ESRGAN generator.
// Upstream: https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/archs/rrdbnet_arch.py
#pragma once

#include "engine/models/model.h"

namespace kiln::engine {

class RRDBNet final : public Model {
  public:
    RRDBNet(const weights::RRDBNetConfig& config, weights::StateDict weights);
    int size_multiple() const override { return unshuffle_; }

  protected:
    ValueId build(Graph& g, ValueId x) const override;

  private:
    weights::RRDBNetConfig config_;
    int unshuffle_ = 1;  // pixel-unshuffle factor of the input (x2: 2, x1: 4)
};

}  // namespace kiln::engine
