// Runs one upscale job on a worker's Upscaler (its execution context and cached plans):
// decode, tile, upscale, encode PNG.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/image/image.h"
#include "engine/models/model.h"
#include "engine/pipeline/upscaler.h"

namespace kiln::scheduler {

struct RunOutput {
    std::vector<uint8_t> png;
    std::vector<uint8_t> thumbnail_png;  // longer side at most 256 px (gallery)
    int width = 0, height = 0;
};

// Throws kiln::Error: CANCELLED when hooks.cancel becomes true; OUT_OF_MEMORY when the plan
// does not fit even after one retry with tiles half the size.
RunOutput run_upscale_job(engine::Upscaler& upscaler,
                          const std::vector<uint8_t>& input,
                          int tile,
                          size_t memory_budget,
                          const image::DecodeLimits& limits,
                          const engine::UpscaleHooks& hooks);

}  // namespace kiln::scheduler
