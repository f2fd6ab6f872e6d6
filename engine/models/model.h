// A model: detected architecture + weights, able to build its graph for an input shape.
// Model code is written once against engine::Graph and runs on every backend.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "engine/graph/graph.h"
#include "weights/arch.h"

namespace kiln::engine {

class Model {
  public:
    virtual ~Model() = default;

    // Takes ownership of the weights; throws core::Error(BAD_FILE) when a tensor is missing.
    static std::unique_ptr<Model> create(weights::DetectedModel detected);

    const std::string& arch() const { return arch_; }
    int scale() const { return scale_; }
    int in_channels() const { return 3; }
    int out_channels() const { return 3; }
    // Input height and width must be multiples of this (pixel-unshuffle models).
    virtual int size_multiple() const { return 1; }
    int64_t parameter_count() const;

    // The graph for one NHWC input of h x w x 3.
    Graph build_graph(int h, int w) const;

  protected:
    Model(std::string arch, int scale, weights::StateDict weights);
    // x: [h, w, 3] -> [h*scale, w*scale, 3]
    virtual ValueId build(Graph& g, ValueId x) const = 0;

    // weight + bias of a convolution named by its state-dict prefix ("body.0.rdb1.conv1").
    ConvWeights conv(const std::string& prefix) const;
    std::vector<float> values(const std::string& key) const;

  private:
    std::shared_ptr<const std::vector<float>> tensor(const std::string& key,
                                                     std::vector<int64_t>* shape) const;

    std::string arch_;
    int scale_;
    struct Stored {
        std::vector<int64_t> shape;
        std::shared_ptr<const std::vector<float>> data;
    };
    std::map<std::string, Stored> tensors_;
};

}  // namespace kiln::engine
