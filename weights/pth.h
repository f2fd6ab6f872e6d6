// PyTorch .pth reader: torch.save's zip format (data.pkl + data/<key> entries) and the
// legacy pre-1.6 stream format, through a restricted unpickler that executes nothing.
#pragma once

#include <filesystem>

#include "weights/state_dict.h"

namespace kiln::weights {

// A dict of float32/float16/bfloat16 tensors, optionally wrapped in "params_ema" (preferred)
// or "params". A refused global or a malformed file is core::Error(BAD_FILE); non-contiguous or
// non-float tensors are core::Error(UNSUPPORTED).
StateDict load_pth(const std::filesystem::path& path);

}  // namespace kiln::weights
