// OmniSR (Wang et al., CVPR 2023; weights::OmniSRConfig): omni self-attention groups with
// ESA, written against the graph. Linear layers are 1x1 convolutions, depthwise
// convolutions grouped CONV2D, the block/grid attentions WINDOW_ATTENTION and the
// block/grid channel attentions CHANNEL_ATTENTION (engine/graph/graph.h).
// Upstream: https://github.com/Francis0625/Omni-SR (ops/OSA.py, OSAG.py, esa.py)
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/models/model.h"

namespace kiln::engine {

class OmniSR final : public Model {
  public:
    OmniSR(const weights::OmniSRConfig& config, weights::StateDict weights);
    // Whole attention windows; ESA's 7x7 pool of the half-size map needs 15 pixels.
    int size_multiple() const override { return config_.window_size; }
    int min_window() const override { return 15; }
    // The published forward pads bottom and right with zeros to the window multiple and
    // takes no other padding.
    EdgeMode edge_mode() const override { return EdgeMode::ZERO; }
    bool takes_prepad() const override { return false; }

  protected:
    // x: [h, w, 3] -> [s h, s w, 3]
    ValueId build(Graph& g, ValueId x) const override;

  private:
    ValueId group(Graph& g, const std::string& key, ValueId x) const;
    ValueId block(Graph& g, const std::string& key, ValueId x) const;
    ValueId mbconv(Graph& g, const std::string& key, ValueId x) const;
    ValueId window_attention(Graph& g, const std::string& key, ValueId x, PixelGroups groups) const;
    ValueId channel_attention(Graph& g,
                              const std::string& key,
                              ValueId x,
                              PixelGroups groups) const;
    ValueId gated_ffn(Graph& g, const std::string& key, ValueId x) const;
    ValueId esa(Graph& g, const std::string& key, ValueId x) const;

    // A bias-free Linear [out, in] as a 1x1 convolution.
    ConvWeights linear(const std::string& key) const;
    // A depthwise convolution (weight [c, 1, k, k]).
    ConvWeights depthwise(const std::string& prefix) const;
    NormParams layer_norm(const std::string& key, float eps) const;

    weights::OmniSRConfig config_;
    // Per attention layer (by key): the relative position bias [heads, n, n] from its table.
    std::map<std::string, std::shared_ptr<const std::vector<float>>> position_bias_;
    // Per gated feed-forward (by key): project_in and dwconv with their output halves swapped,
    // so that GEGLU's x[:c] * gelu(x[c:]) computes OmniSR's gelu(x1) * x2.
    std::map<std::string, std::pair<ConvWeights, ConvWeights>> gated_;
};

}  // namespace kiln::engine
