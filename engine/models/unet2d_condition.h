// The conditional UNet of Stable Diffusion 1.x/2.x (diffusers' UNet2DConditionModel) built
// on engine::Graph, so it runs on every backend: timestep embedding MLP, ResnetBlock2D,
// Transformer2DModel (GroupNorm, proj_in/out, self- and cross-attention, GEGLU feed-forward),
// strided-conv downsamplers, nearest x2 upsamplers and the skip connections.
//
// The graph describes one sample and has three inputs, in this order:
//   0: sample               [h, w, in_channels]
//   1: sinusoidal timestep  [1, 1, block_out_channels[0]] (timestep_features() makes it)
//   2: context tokens       [tokens, 1, cross_attention_dim] (encoder_hidden_states)
// and one output: the prediction [h, w, out_channels]. Batches (classifier-free guidance's
// [uncond; cond]) run through Plan::run_batch.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/graph/graph.h"
#include "weights/diffusers_unet.h"

namespace kiln::engine {

class UNet2DCondition {
  public:
    // Takes the weights in diffusers names (weights::load_unet gives them); throws
    // core::Error(BAD_FILE) naming a missing or misshapen tensor.
    UNet2DCondition(weights::UNetConfig config, weights::StateDict weights);

    const weights::UNetConfig& config() const { return config_; }
    int64_t parameter_count() const;
    // Sample sides must be multiples of this (every level halves them).
    int size_multiple() const { return 1 << (config_.levels() - 1); }

    Graph build_graph(int h, int w, int context_tokens) const;

    // diffusers' get_timestep_embedding: half = dim / 2 frequencies
    // exp(-ln(10000) * i / (half - freq_shift)); [sin, cos], flipped to [cos, sin] when
    // flip_sin_to_cos. Computed in fp32 as PyTorch does.
    std::vector<float> timestep_features(float timestep) const;

  private:
    struct Tensor {
        std::vector<int64_t> shape;
        std::shared_ptr<const std::vector<float>> data;
    };
    const Tensor& tensor(const std::string& key, size_t rank) const;
    // A convolution or a Linear layer (as a 1x1 convolution) by module prefix.
    ConvWeights conv(const std::string& prefix, int stride = 1) const;
    ConvWeights linear(const std::string& prefix) const;
    // prefix.bias when present (checked against out_channels), else null.
    std::shared_ptr<const std::vector<float>> bias(const std::string& prefix,
                                                   int out_channels) const;
    NormParams norm(const std::string& prefix, int groups, float eps) const;

    ValueId resnet(Graph& g, const std::string& p, ValueId x, ValueId temb) const;
    ValueId transformer(Graph& g, const std::string& p, ValueId x, ValueId ctx, int heads) const;
    ValueId attention(Graph& g,
                      const std::string& p,
                      ValueId x,
                      ValueId ctx,
                      ValueId residual,
                      int heads) const;

    weights::UNetConfig config_;
    std::map<std::string, Tensor> tensors_;
};

}  // namespace kiln::engine
