// A naive interpreter of engine::Graph: plain NHWC loops, double accumulation, no layouts,
// no fusion. The CPU backend's plans are checked against it.
#pragma once

#include <vector>

#include "engine/graph/graph.h"

namespace kiln::test {

std::vector<float> run_reference(const engine::Graph& graph, const std::vector<float>& input);
// A graph of several inputs, given in declaration order (Graph::input_values()).
std::vector<float> run_reference(const engine::Graph& graph,
                                 const std::vector<std::vector<float>>& inputs);

}  // namespace kiln::test
