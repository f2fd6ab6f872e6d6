#include "scheduler/admission.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "engine/pipeline/upscaler.h"
#include "scheduler/scheduler_error.h"

namespace kiln::scheduler {

namespace {

image::ImageHeader checked_header(std::span<const uint8_t> bytes,
                                  const image::DecodeLimits& limits) {
    if (image::sniff_format(bytes) == image::ImageFormat::UNKNOWN) {
        throw SchedulerError(SchedulerCode::UNSUPPORTED_INPUT,
                             "the image is neither PNG nor JPEG; send a PNG or JPEG file");
    }
    image::ImageHeader header;
    try {
        header = image::read_header(bytes);
        image::check_decode_limits(header.width, header.height, limits);
        (void)image::decode_image(bytes, limits);  // corrupt or truncated data fails here
    } catch (const core::Error& e) {
        switch (e.code()) {
            case core::ErrorCode::TOO_LARGE:
                throw SchedulerError(SchedulerCode::TOO_LARGE, e.what());
            case core::ErrorCode::UNSUPPORTED:
                throw SchedulerError(SchedulerCode::UNSUPPORTED_INPUT, e.what());
            default:
                throw SchedulerError(SchedulerCode::INVALID_PARAMS,
                                     std::string("the image cannot be decoded: ") + e.what());
        }
    }
    return header;
}

}  // namespace

AdmittedImage admit_upscale_input(const engine::Model& model,
                                  const engine::Backend& backend,
                                  std::span<const uint8_t> bytes,
                                  int tile,
                                  size_t memory_budget,
                                  const image::DecodeLimits& limits) {
    const image::ImageHeader header = checked_header(bytes, limits);
    engine::UpscaleOptions options;
    options.memory_budget = memory_budget;
    options.tile = tile;
    AdmittedImage admitted{header.width, header.height, 0, 0};
    try {
        admitted.tile = engine::choose_tile(model, backend, header.height, header.width, options);
    } catch (const core::Error& e) {
        if (e.code() != core::ErrorCode::TOO_LARGE)
            throw;
        throw SchedulerError(SchedulerCode::TOO_LARGE,
                             std::string(e.what()) + "; send a smaller image");
    }
    // The plans a run holds: its largest window's, plus a syncgap run's probe.
    admitted.peak_bytes = engine::estimate_run_bytes(model, backend, header.height, header.width,
                                                     admitted.tile, options);
    if (admitted.peak_bytes > memory_budget) {
        throw SchedulerError(
            SchedulerCode::TOO_LARGE,
            "tile " + std::to_string(admitted.tile) + " needs about " +
                std::to_string(admitted.peak_bytes >> 20) + " MiB, over the memory budget of " +
                std::to_string(memory_budget >> 20) + " MiB; use a smaller tile or omit it");
    }
    return admitted;
}

}  // namespace kiln::scheduler
