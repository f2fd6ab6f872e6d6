// Image basics, limits and the format dispatch; the codecs live in png_*.cpp and jpeg_*.cpp.
#include "image/image.h"

#include <algorithm>
#include <array>
#include <string>

#include "core/error.h"
#include "image/jpeg_decode.h"
#include "image/png_decode.h"

namespace kiln::image {

size_t Image::sample_count() const {
    if (width <= 0 || height <= 0 || channels <= 0) {
        return 0;
    }
    return static_cast<size_t>(width) * static_cast<size_t>(height) * static_cast<size_t>(channels);
}

void check_decode_limits(int64_t width, int64_t height, const DecodeLimits& limits) {
    const std::string size = std::to_string(width) + "x" + std::to_string(height);
    if (width > limits.max_side || height > limits.max_side) {
        throw core::Error(core::ErrorCode::TOO_LARGE, "image is " + size + ", over the limit of " +
                                                          std::to_string(limits.max_side) +
                                                          " pixels per side");
    }
    // Both sides are at most max_side (an int) here, so the product cannot overflow.
    if (width * height > limits.max_pixels) {
        throw core::Error(core::ErrorCode::TOO_LARGE,
                          "image is " + size + " (" + std::to_string(width * height) +
                              " pixels), over the limit of " + std::to_string(limits.max_pixels) +
                              " pixels");
    }
}

ImageFormat sniff_format(std::span<const uint8_t> bytes) {
    static constexpr std::array<uint8_t, 8> kPngMagic = {0x89, 'P',  'N',  'G',
                                                         '\r', '\n', 0x1a, '\n'};
    static constexpr std::array<uint8_t, 3> kJpegMagic = {0xff, 0xd8, 0xff};
    if (bytes.size() >= kPngMagic.size() &&
        std::equal(kPngMagic.begin(), kPngMagic.end(), bytes.begin())) {
        return ImageFormat::PNG;
    }
    if (bytes.size() >= kJpegMagic.size() &&
        std::equal(kJpegMagic.begin(), kJpegMagic.end(), bytes.begin())) {
        return ImageFormat::JPEG;
    }
    return ImageFormat::UNKNOWN;
}

namespace {

ImageFormat known_format(std::span<const uint8_t> bytes) {
    if (bytes.empty()) {
        throw core::Error(core::ErrorCode::BAD_FILE, "image data is empty");
    }
    const ImageFormat format = sniff_format(bytes);
    if (format == ImageFormat::UNKNOWN) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "unrecognized image format (expected PNG or JPEG)");
    }
    return format;
}

}  // namespace

ImageHeader read_header(std::span<const uint8_t> bytes) {
    return known_format(bytes) == ImageFormat::PNG ? png_read_header(bytes)
                                                   : jpeg_read_header(bytes);
}

Image decode_image(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
    return known_format(bytes) == ImageFormat::PNG ? png_decode(bytes, limits)
                                                   : jpeg_decode(bytes, limits);
}

}  // namespace kiln::image
