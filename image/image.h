// Decoded images and the PNG/JPEG codecs kiln accepts from users.
//
// Every decoder checks the image size against DecodeLimits from the header, before any pixel
// memory is allocated, so an admission check and the decoder agree on what is too large.
// Errors are kiln::core::Error: BAD_FILE (corrupt, truncated), UNSUPPORTED (unknown format or
// variant), TOO_LARGE (over a limit), OUT_OF_MEMORY, IO / NOT_FOUND (files).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace kiln::image {

struct Image {
    int width = 0, height = 0;
    int channels = 0;               // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int bit_depth = 8;              // 8 or 16
    std::vector<uint16_t> samples;  // row-major HWC, values 0..(2^bit_depth - 1)

    int max_value() const { return (1 << bit_depth) - 1; }
    bool has_alpha() const { return channels == 2 || channels == 4; }
    size_t sample_count() const;
};

struct DecodeLimits {
    int64_t max_pixels = 64LL << 20;
    int max_side = 32768;
    int64_t max_file_bytes = 1LL << 30;  // read_image_file only
};

// Throws TOO_LARGE naming the limit and the size when width x height is over `limits`.
void check_decode_limits(int64_t width, int64_t height, const DecodeLimits& limits);

enum class ImageFormat { PNG, JPEG, UNKNOWN };

// By magic bytes only; never throws.
ImageFormat sniff_format(std::span<const uint8_t> bytes);

// What decode_image would return, from the header alone: channels and bit_depth are those of
// the decoded Image (palette PNG -> 3 or 4, gray below 8 bits -> 8).
struct ImageHeader {
    ImageFormat format = ImageFormat::UNKNOWN;
    int width = 0, height = 0, channels = 0, bit_depth = 8;
};
// Does not apply DecodeLimits: the caller decides with check_decode_limits.
ImageHeader read_header(std::span<const uint8_t> bytes);

Image decode_image(std::span<const uint8_t> bytes, const DecodeLimits& limits = {});
Image read_image_file(const std::filesystem::path& path, const DecodeLimits& limits = {});

// compression_level: zlib level 0..9. Throws INVALID_ARGUMENT for an inconsistent Image.
std::vector<uint8_t> encode_png(const Image& image, int compression_level = 3);
// Atomic: written to a temporary file in the same folder, synced, then renamed over `path`.
void write_png_file(const std::filesystem::path& path, const Image& image);

}  // namespace kiln::image
