#include "scheduler/admission.h"

#include <algorithm>
#include <string>

#include "engine/core/error.h"
#include "engine/pipeline/upscaler.h"
#include "scheduler/service_error.h"

namespace kiln::scheduler {

namespace {

int round_up(int v, int m) {
    return (v + m - 1) / m * m;
}

image::ImageHeader checked_header(std::span<const uint8_t> bytes,
                                  const image::DecodeLimits& limits) {
    if (image::sniff_format(bytes) == image::ImageFormat::UNKNOWN) {
        throw ServiceError(ServiceCode::UNSUPPORTED_MEDIA,
                           "the image is neither PNG nor JPEG; send a PNG or JPEG file");
    }
    image::ImageHeader header;
    try {
        header = image::read_header(bytes);
        image::check_decode_limits(header.width, header.height, limits);
        (void)image::decode_image(bytes, limits);  // corrupt or truncated data fails here
    } catch (const Error& e) {
        switch (e.code()) {
            case ErrorCode::TOO_LARGE:
                throw ServiceError(ServiceCode::PAYLOAD_TOO_LARGE, e.what());
            case ErrorCode::UNSUPPORTED:
                throw ServiceError(ServiceCode::UNSUPPORTED_MEDIA, e.what());
            default:
                throw ServiceError(ServiceCode::INVALID_PARAMS,
                                   std::string("the image cannot be decoded: ") + e.what());
        }
    }
    return header;
}

}  // namespace

AdmittedImage admit_upscale_input(const engine::Model& model,
                                  engine::Backend& backend,
                                  engine::ExecutionContext& context,
                                  std::span<const uint8_t> bytes,
                                  int tile,
                                  size_t memory_budget,
                                  const image::DecodeLimits& limits) {
    const image::ImageHeader header = checked_header(bytes, limits);
    engine::UpscaleOptions options;
    options.memory_budget = memory_budget;
    options.tile = tile;
    engine::Upscaler upscaler(model, backend, context);
    AdmittedImage admitted{header.width, header.height, 0, 0};
    try {
        admitted.tile = upscaler.choose_tile(header.height, header.width, options);
    } catch (const Error& e) {
        if (e.code() != ErrorCode::TOO_LARGE)
            throw;
        throw ServiceError(ServiceCode::PAYLOAD_TOO_LARGE,
                           std::string(e.what()) + "; send a smaller image");
    }
    // The window the plan is built for: one tile core plus its context, or the padded image.
    const int m = model.size_multiple();
    const int ph = round_up(header.height + 2 * options.prepad, m);
    const int pw = round_up(header.width + 2 * options.prepad, m);
    const int window = round_up(admitted.tile + 2 * options.tile_pad, m);
    const int wh = admitted.tile == 0 ? ph : std::min(ph, window);
    const int ww = admitted.tile == 0 ? pw : std::min(pw, window);
    admitted.peak_bytes = upscaler.estimate_peak_bytes(wh, ww);
    if (admitted.peak_bytes > memory_budget) {
        throw ServiceError(
            ServiceCode::PAYLOAD_TOO_LARGE,
            "tile " + std::to_string(admitted.tile) + " needs about " +
                std::to_string(admitted.peak_bytes >> 20) + " MiB, over the memory budget of " +
                std::to_string(memory_budget >> 20) + " MiB; use a smaller tile or omit it");
    }
    return admitted;
}

}  // namespace kiln::scheduler
