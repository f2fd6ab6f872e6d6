// PNG/JPEG decoding through kiln's wrappers with the header-checked limits (a small pixel
// budget: an image over it must be refused before its pixels are allocated, which
// -malloc_limit_mb turns into a finding), and the .npy reader.
#include <span>

#include "core/error.h"
#include "image/image.h"
#include "image/npy.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> bytes(data, size);
    kiln::image::DecodeLimits limits;
    limits.max_pixels = 4LL << 20;
    limits.max_side = 8192;
    try {
        const kiln::image::ImageHeader header = kiln::image::read_header(bytes);
        kiln::image::check_decode_limits(header.width, header.height, limits);
        kiln::image::decode_image(bytes, limits);
    } catch (const kiln::core::Error&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    try {
        kiln::image::npy_parse(bytes);
    } catch (const kiln::core::Error&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    return 0;
}
