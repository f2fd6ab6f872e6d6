// A model: detected architecture + weights, able to build its graph for an input shape.
// Model code is written once against engine::Graph and runs on every backend.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "engine/graph/graph.h"
#include "weights/arch.h"

namespace kiln::engine {

// How the pipeline extends an image past its edges: for a model's border (border() > 0) and
// to its size multiple.
enum class EdgeMode { REFLECT, REPLICATE, ZERO };

// How the pipeline upscales an image's alpha channel: through the model, as Real-ESRGAN's
// Python program does, or with a bicubic resize of the whole alpha plane, as
// waifu2x-ncnn-vulkan and realcugan-ncnn-vulkan do (ncnn's Interp, per tile there).
enum class AlphaRule { MODEL, BICUBIC };

// Real-CUGAN's syncgap: a tiled run feeds every tile the same squeeze-excitation means (each
// SE block's per-channel means), found beforehand over the tiles by probe graphs.
struct SharedMeans {
    // The first `fed` SE blocks take their means from graph inputs 1..fed ([1, 1, c] each,
    // in block order) instead of computing them from their tile.
    int fed = 0;
    // >= fed: the graph is a probe whose output is the means of blocks fed..probe,
    // concatenated ([1, 1, sum of c]); it runs only as far as it needs. -1: the image.
    int probe = -1;
};

// The squeeze-excitation means of one graph build: each block's mean is fed from an input or
// computed from its feature map, and kept when the graph probes it.
class SeMeans {
  public:
    explicit SeMeans(SharedMeans spec = {}) : spec_(spec) {}
    // The next block's mean of x ([h, w, c] -> [1, 1, c]).
    ValueId next(Graph& g, ValueId x);
    int blocks() const { return block_; }
    // The probed means, concatenated (spec.probe >= 0, after the build).
    ValueId probed(Graph& g) const;

  private:
    SharedMeans spec_;
    int block_ = 0;
    std::vector<ValueId> probed_;
};

class Model {
  public:
    virtual ~Model() = default;

    // Takes ownership of the weights; throws core::Error(BAD_FILE) when a tensor is missing.
    static std::unique_ptr<Model> create(weights::DetectedModel detected);

    const std::string& arch() const { return arch_; }
    int scale() const { return scale_; }
    int in_channels() const { return 3; }
    int out_channels() const { return 3; }
    // Window height and width must be multiples of this (pixel-unshuffle models, UNets,
    // window attention) and at least min_window() (OmniSR's ESA pools a 7x7 window of a
    // half-size map).
    virtual int size_multiple() const { return 1; }
    virtual int min_window() const { return 1; }
    // The smallest window side the model takes that holds `size` pixels: rounded up to the
    // size multiple, at least min_window().
    int window_for(int size) const;
    // Input pixels the network consumes on every side (unpadded convolutions): its graph for
    // an h x w window takes (h + 2 border) x (w + 2 border) pixels and gives (s h) x (s w).
    // 0 for networks that pad their convolutions themselves.
    virtual int border() const { return 0; }
    // How the pipeline extends the image by border() pixels past its edges and to the size
    // multiple (the official program's rule); models with a border take no separate pre-pad.
    virtual EdgeMode edge_mode() const { return EdgeMode::REFLECT; }
    // Whether Real-ESRGAN's reflect pre-pad (UpscaleOptions::prepad) applies: not to models
    // whose programs pad otherwise.
    virtual bool takes_prepad() const { return border() == 0; }
    virtual AlphaRule alpha_rule() const { return AlphaRule::MODEL; }
    // Squeeze-excitation blocks whose means a tiled run shares across its tiles, as the
    // model's program does (Real-CUGAN's syncgap); 0: every tile computes its own.
    virtual int shared_se_blocks() const { return 0; }
    int64_t parameter_count() const;

    // The graph for one window of h x w: an NHWC input of (h + 2 border) x (w + 2 border) x 3.
    Graph build_graph(int h, int w) const;
    // The same window's graph with its SE means fed or probed (shared_se_blocks() > 0).
    Graph build_graph(int h, int w, const SharedMeans& means) const;

  protected:
    Model(std::string arch, int scale, weights::StateDict weights);
    // x: [h + 2 border, w + 2 border, 3] -> [h*scale, w*scale, 3]
    virtual ValueId build(Graph& g, ValueId x) const = 0;
    // build() with the SE blocks' means taken from `means`; models with
    // shared_se_blocks() > 0 override it.
    virtual ValueId build_sharing_means(Graph& g, ValueId x, SeMeans& means) const;

    // weight + bias of a convolution named by its state-dict prefix ("body.0.rdb1.conv1").
    ConvWeights conv(const std::string& prefix) const;
    std::vector<float> values(const std::string& key) const;
    // The tensor under `key` (its shape into *shape when given); BAD_FILE when missing.
    std::shared_ptr<const std::vector<float>> tensor(const std::string& key,
                                                     std::vector<int64_t>* shape) const;

  private:
    std::string arch_;
    int scale_;
    struct Stored {
        std::vector<int64_t> shape;
        std::shared_ptr<const std::vector<float>> data;
    };
    std::map<std::string, Stored> tensors_;
};

}  // namespace kiln::engine
