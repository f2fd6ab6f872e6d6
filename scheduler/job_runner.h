// Runs one upscale job on a worker's Upscaler (its execution context and cached plans):
// decode, tile, upscale, encode PNG.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/models/model.h"
#include "engine/pipeline/upscaler.h"
#include "image/image.h"
#include "scheduler/task.h"

namespace kiln::scheduler {

// Throws kiln::core::Error: CANCELLED when hooks.cancel becomes true; OUT_OF_MEMORY when the plan
// does not fit even after one retry with tiles half the size.
RunOutput run_upscale_job(engine::Upscaler& upscaler,
                          const std::vector<uint8_t>& input,
                          int tile,
                          size_t memory_budget,
                          const image::DecodeLimits& limits,
                          const engine::UpscaleHooks& hooks);

}  // namespace kiln::scheduler
