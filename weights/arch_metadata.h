// The architecture block `kiln convert` writes into a safetensors file's "__metadata__":
// the family, its hyper-parameters and what detection cannot know from tensors alone
// (SRVGGNetCompact's activation without PReLU weights, whose program's rules a CUNet
// follows, an ncnn graph's final resize). Reading checks it against the tensors.
#pragma once

#include <map>
#include <string>

#include "weights/arch.h"

namespace kiln::weights {

// {"kiln.arch": arch name, "kiln.config": the config as JSON, "kiln.scale",
// "kiln.output_resize"}.
std::map<std::string, std::string> arch_metadata(const DetectedModel& model);

// Applies a file's block to what detection found: the fields tensors cannot tell, then
// every other field must agree. No "kiln.arch" key: nothing to do. A block that disagrees
// or does not parse is core::Error(BAD_FILE) saying which field.
void apply_arch_metadata(DetectedModel& model, const std::map<std::string, std::string>& metadata);

}  // namespace kiln::weights
