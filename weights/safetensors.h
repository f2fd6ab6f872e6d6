// safetensors reader (https://github.com/huggingface/safetensors): 8-byte LE header length,
// JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "weights/state_dict.h"

namespace kiln::weights {

// F32, F16 and BF16 tensors; anything else is core::Error(UNSUPPORTED). A malformed, truncated or
// inconsistent file is core::Error(BAD_FILE) naming the file and the problem.
StateDict load_safetensors(const std::filesystem::path& path);

// The header's "__metadata__" string map (empty when absent); BAD_FILE as above.
std::map<std::string, std::string> load_safetensors_metadata(const std::filesystem::path& path);

}  // namespace kiln::weights
