// safetensors writer: the canonical state dict of a detected model and a "__metadata__" string
// map, written to a temporary name and renamed into place (`kiln convert`).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "weights/state_dict.h"

namespace kiln::weights {

// Tensors stored as F16 or BF16 are written so (their values convert exactly); the others
// as F32. Keys are written sorted. Throws core::Error(IO) when the file cannot be written.
void write_safetensors(const std::filesystem::path& path,
                       const StateDict& weights,
                       const std::map<std::string, std::string>& metadata);

}  // namespace kiln::weights
