// Image files: read + decode, encode + atomic write.
#include "engine/core/error.h"
#include "engine/image/file_io.h"
#include "engine/image/image.h"

namespace kiln::image {

Image read_image_file(const std::filesystem::path& path, const DecodeLimits& limits) {
    const std::vector<uint8_t> bytes = file_read_bytes(path, limits.max_file_bytes);
    try {
        return decode_image(bytes, limits);
    } catch (const Error& error) {
        // Name the file: the decoder only saw bytes.
        throw Error(error.code(), path.string() + ": " + error.what());
    }
}

void write_png_file(const std::filesystem::path& path, const Image& image) {
    file_write_atomic(path, encode_png(image));
}

}  // namespace kiln::image
