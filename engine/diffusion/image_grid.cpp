#include "engine/diffusion/image_grid.h"

#include <algorithm>

#include "core/error.h"

namespace kiln::engine::diffusion {

namespace {

void require_pixels(const Latents& l) {
    if (l.c != 1 && l.c != 3) {
        throw core::Error(
            core::ErrorCode::UNSUPPORTED,
            "the model makes " + std::to_string(l.c) +
                "-channel latents; decoding them needs a VAE, which kiln does not run "
                "yet (write them with --npy)");
    }
}

}  // namespace

image::Image latents_to_image(const Latents& latents, int index) {
    require_pixels(latents);
    if (index < 0 || index >= latents.count)
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "no image " + std::to_string(index));
    image::Image out;
    out.width = latents.w;
    out.height = latents.h;
    out.channels = latents.c;
    const auto bytes =
        to_uint8(latents.data.data() + latents.image_floats() * static_cast<size_t>(index),
                 latents.image_floats());
    out.samples.assign(bytes.begin(), bytes.end());
    return out;
}

image::Image latents_to_grid(const Latents& latents, int columns, int gap) {
    require_pixels(latents);
    const int cols = columns > 0 ? std::min(columns, latents.count) : std::min(latents.count, 10);
    const int rows = (latents.count + cols - 1) / cols;
    image::Image grid;
    grid.channels = latents.c;
    grid.width = cols * latents.w + (cols - 1) * gap;
    grid.height = rows * latents.h + (rows - 1) * gap;
    grid.samples.assign(static_cast<size_t>(grid.width) * grid.height * grid.channels, 0);
    for (int k = 0; k < latents.count; ++k) {
        const image::Image one = latents_to_image(latents, k);
        const int x0 = (k % cols) * (latents.w + gap), y0 = (k / cols) * (latents.h + gap);
        for (int y = 0; y < one.height; ++y) {
            std::copy_n(
                one.samples.begin() + static_cast<std::ptrdiff_t>(y) * one.width * one.channels,
                one.width * one.channels,
                grid.samples.begin() +
                    (static_cast<std::ptrdiff_t>(y0 + y) * grid.width + x0) * grid.channels);
        }
    }
    return grid;
}

}  // namespace kiln::engine::diffusion
