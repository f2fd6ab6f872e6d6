// Generated images as 8-bit pictures: one image, or all of them in a grid. Only models that
// generate pixels directly (1 or 3 channels) qualify; latent models need a VAE decoder first.
#pragma once

#include "engine/diffusion/generation.h"
#include "image/image.h"

namespace kiln::engine::diffusion {

// core::Error(UNSUPPORTED) for latents that are not gray or RGB pixels.
image::Image latents_to_image(const Latents& latents, int index);
// `columns` images per row (0: up to 10), `gap` pixels of black between them.
image::Image latents_to_grid(const Latents& latents, int columns, int gap);

}  // namespace kiln::engine::diffusion
