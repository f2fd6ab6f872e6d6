// ncnn model reader: the text .param graph
// (https://github.com/Tencent/ncnn/wiki/param-and-model-file-structure) and the .bin weights of the
// layer types kiln's models use, converted to fp32.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weights/state_dict.h"

namespace kiln::weights {

// One k=v entry. Written with '.', 'e' or 'E' it is a float, else an int; both views are kept.
struct NcnnParam {
    bool is_array = false;
    bool is_float = false;
    int32_t i = 0;
    float f = 0;
    std::vector<float> array;  // array elements (ints converted)
};

struct NcnnLayer {
    std::string type;
    std::string name;
    std::vector<std::string> inputs;
    std::vector<std::string> outputs;
    std::map<int, NcnnParam> params;
    // "weight" ([out, in/group, kh, kw] for convolutions; PyTorch's [in, out/group, kh, kw] for
    // deconvolutions; [out, in] for InnerProduct), "bias", "slope" (PReLU), BatchNorm's
    // "slope", "mean", "var", "bias"; Scale's "scale", "bias".
    std::map<std::string, WeightTensor> weights;

    int param_int(int id, int fallback) const;
    float param_float(int id, float fallback) const;
    std::vector<float> param_array(int id) const;  // empty when absent
};

struct NcnnGraph {
    std::vector<NcnnLayer> layers;
    int blob_count = 0;
};

// Throws core::Error(BAD_FILE) for a malformed .param, a .bin shorter than the .param requires
// (saying how many bytes were expected and present) or a .bin with bytes left over (a sign
// that it belongs to another .param); core::Error(UNSUPPORTED) for unknown layer types and int8 or
// quantised weights.
NcnnGraph load_ncnn(const std::filesystem::path& param_path, const std::filesystem::path& bin_path);

// The two halves, for callers holding the bytes already. `file` names the source in errors.
NcnnGraph parse_ncnn_param(std::string_view text, const std::string& file);
void read_ncnn_weights(NcnnGraph& graph, std::span<const uint8_t> bin, const std::string& file);

}  // namespace kiln::weights
