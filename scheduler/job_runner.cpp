#include "scheduler/job_runner.h"

#include <algorithm>

#include "core/error.h"
#include "engine/pipeline/upscale_image.h"
#include "scheduler/thumbnail.h"

namespace kiln::scheduler {

RunOutput run_upscale_job(engine::Upscaler& upscaler,
                          const std::vector<uint8_t>& input,
                          int tile,
                          size_t memory_budget,
                          const image::DecodeLimits& limits,
                          const engine::UpscaleHooks& hooks) {
    const image::Image decoded = image::decode_image(input, limits);
    engine::UpscaleOptions options;
    options.memory_budget = memory_budget;
    options.tile = upscaler.choose_tile(decoded.height, decoded.width, options);
    if (tile >= 0)
        options.tile = tile;
    image::Image result;
    try {
        result = engine::upscale_image(upscaler, decoded, options, hooks);
    } catch (const core::Error& e) {
        if (e.code() != core::ErrorCode::OUT_OF_MEMORY)
            throw;
        // One retry with smaller tiles; a second failure reaches the job as out_of_memory.
        const int side = options.tile == 0 ? std::max(decoded.height, decoded.width) : options.tile;
        options.tile = std::max(32, side / 2);
        result = engine::upscale_image(upscaler, decoded, options, hooks);
    }
    RunOutput out;
    out.png = image::encode_png(result);
    out.thumbnail_png = image::encode_png(make_thumbnail(result, 256));
    out.width = result.width;
    out.height = result.height;
    return out;
}

}  // namespace kiln::scheduler
