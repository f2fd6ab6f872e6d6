// Image files: read + decode, encode + atomic write.
#include "core/error.h"
#include "image/file_io.h"
#include "image/image.h"

namespace kiln::image {

Image read_image_file(const std::filesystem::path& path, const DecodeLimits& limits) {
    const std::vector<uint8_t> bytes = file_read_bytes(path, limits.max_file_bytes);
    try {
        return decode_image(bytes, limits);
    } catch (const core::Error& error) {
        // Name the file: the decoder only saw bytes.
        throw core::Error(error.code(), path.string() + ": " + error.what());
    }
}

void write_png_file(const std::filesystem::path& path, const Image& image) {
    file_write_atomic(path, encode_png(image));
}

}  // namespace kiln::image
