// Upscales a decoded image as Real-ESRGAN's inference script does: RGB through the model;
// gray is expanded to RGB and the result converted back to gray; alpha is upscaled by the
// model too (as a gray image) and re-attached, or resized bicubically for models whose
// programs do that (Model::alpha_rule: waifu2x, Real-CUGAN); 16-bit stays 16-bit.
#pragma once

#include "engine/pipeline/upscaler.h"
#include "image/image.h"

namespace kiln::engine {

// Splits an image into the RGB float image the model sees ([0,1]) and, when present, its
// alpha as a 3-channel float image (for the model) or a 1-channel plane (for a resize).
FloatImage image_rgb(const image::Image& img);
FloatImage image_alpha_rgb(const image::Image& img);
FloatImage image_alpha_plane(const image::Image& img);

// floor(v * max + 0.5) clamped to [0, max] (the official binaries' rounding).
uint16_t quantize(float v, int max_value);

image::Image upscale_image(Upscaler& upscaler,
                           const image::Image& img,
                           const UpscaleOptions& options,
                           const UpscaleHooks& hooks = {});

}  // namespace kiln::engine
