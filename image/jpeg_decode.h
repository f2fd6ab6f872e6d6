// JPEG decoding (libjpeg-turbo). Internal to kiln_image: callers use decode_image / read_header.
#pragma once

#include <cstdint>
#include <span>

#include "image/image.h"

namespace kiln::image {

ImageHeader jpeg_read_header(std::span<const uint8_t> bytes);
Image jpeg_decode(std::span<const uint8_t> bytes, const DecodeLimits& limits);

}  // namespace kiln::image
