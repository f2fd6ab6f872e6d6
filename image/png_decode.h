// PNG decoding (libpng). Internal to kiln_image: callers use decode_image / read_header.
#pragma once

#include <cstdint>
#include <span>

#include "image/image.h"

namespace kiln::image {

ImageHeader png_read_header(std::span<const uint8_t> bytes);
Image png_decode(std::span<const uint8_t> bytes, const DecodeLimits& limits);

}  // namespace kiln::image
