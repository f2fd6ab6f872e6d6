// What is checked before a job is accepted: the image (format, size from the header, a full
// decode) and a tile plan whose estimated peak memory fits the budget.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/backend.h"
#include "engine/models/model.h"
#include "image/image.h"

namespace kiln::scheduler {

struct AdmittedImage {
    int width = 0, height = 0;
    int tile = 0;           // the tile core the job will run with (0: whole image)
    size_t peak_bytes = 0;  // estimated peak of that plan
};

// Throws SchedulerError: UNSUPPORTED_MEDIA (not PNG/JPEG or an unsupported variant),
// PAYLOAD_TOO_LARGE (over the decode limits, or no tile fits the memory budget),
// INVALID_PARAMS (undecodable image, bad tile).
AdmittedImage admit_upscale_input(const engine::Model& model,
                                  const engine::Backend& backend,
                                  std::span<const uint8_t> bytes,
                                  int tile,
                                  size_t memory_budget,
                                  const image::DecodeLimits& limits);

}  // namespace kiln::scheduler
