// Per-family detectors behind detect_architecture (internal to weights/).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "weights/arch.h"

namespace kiln::weights::detail {

// Each returns nullopt when the keys are not this family's; once they are, an inconsistent
// tensor is core::Error(BAD_FILE) and an unimplemented variant core::Error(UNSUPPORTED).
std::optional<DetectedModel> detect_rrdbnet(StateDict& weights);
std::optional<DetectedModel> detect_srvgg(StateDict& weights);
std::optional<DetectedModel> detect_upconv7(StateDict& weights);
std::optional<DetectedModel> detect_cunet(StateDict& weights);
std::optional<DetectedModel> detect_omnisr(StateDict& weights);

std::string shape_string(const std::vector<int64_t>& shape);

// The tensor under `key`, which must have exactly `shape`; BAD_FILE naming key and shapes.
const WeightTensor& require_tensor(const StateDict& weights,
                                   const std::string& key,
                                   const std::vector<int64_t>& shape);

}  // namespace kiln::weights::detail
