// The pixel buffer both decoders write into. Internal to kiln_image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "core/error.h"

namespace kiln::image {

// Sized once, before the codec runs; a failed allocation becomes OUT_OF_MEMORY, not bad_alloc.
inline std::vector<uint16_t> pixel_buffer_allocate(size_t sample_count) {
    try {
        return std::vector<uint16_t>(sample_count);
    } catch (const std::bad_alloc&) {
        throw core::Error(
            core::ErrorCode::OUT_OF_MEMORY,
            "cannot allocate " + std::to_string(sample_count * 2) + " bytes of pixels");
    }
}

// 8-bit codecs write their bytes into the first `count` bytes of the uint16_t buffer, which
// saves a second image-sized allocation; this widens them in place. Walking backwards is
// safe: sample i occupies bytes 2i and 2i+1, never below byte i, which is read first.
inline void pixel_buffer_widen_8_to_16(std::vector<uint16_t>& samples, size_t count) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(samples.data());
    for (size_t i = count; i-- > 0;) {
        const uint16_t value = bytes[i];
        samples[i] = value;
    }
}

}  // namespace kiln::image
