// PNG decoding with libpng, from memory.
//
// libpng reports errors by longjmp. A longjmp that skips a C++ destructor is undefined, so the
// code is split in two kinds of frames: the "step" functions call setjmp and libpng and hold
// nothing but pointers to plain structs; the C++ frames above them own every resource (the
// png_struct via RAII, the pixel vector) and turn a failed step into a kiln::core::Error.
#include "image/png_decode.h"

#include <png.h>

#include <bit>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "image/pixel_buffer.h"

namespace kiln::image {
namespace {

// Everything the callbacks and the setjmp frames touch: plain data, no destructors.
struct PngReadState {
    const uint8_t* data = nullptr;
    size_t size = 0;
    size_t offset = 0;
    char message[256] = {};
    // From IHDR.
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    bool has_trns = false;
    // After the transforms (png_step_prepare).
    int channels_out = 0, bit_depth_out = 0;
    size_t rowbytes = 0;
};

void png_on_error(png_structp png, png_const_charp message) {
    auto* state = static_cast<PngReadState*>(png_get_error_ptr(png));
    std::snprintf(state->message, sizeof state->message, "%s", message);
    png_longjmp(png, 1);
}

// libpng's warnings (bad ancillary chunks, CRC errors in them) would go to stderr.
void png_on_warning(png_structp, png_const_charp) {}

void png_on_read(png_structp png, png_bytep out, size_t length) {
    auto* state = static_cast<PngReadState*>(png_get_io_ptr(png));
    if (length > state->size - state->offset) {
        png_error(png, "unexpected end of data (truncated file)");
    }
    std::memcpy(out, state->data + state->offset, length);
    state->offset += length;
}

class PngReader {
  public:
    explicit PngReader(PngReadState* state) {
        png_ = png_create_read_struct(PNG_LIBPNG_VER_STRING, state, png_on_error, png_on_warning);
        if (png_ != nullptr) {
            info_ = png_create_info_struct(png_);
        }
        if (png_ == nullptr || info_ == nullptr) {
            png_destroy_read_struct(&png_, &info_, nullptr);
            throw core::Error(core::ErrorCode::OUT_OF_MEMORY, "cannot create a libpng reader");
        }
    }
    ~PngReader() { png_destroy_read_struct(&png_, &info_, nullptr); }
    PngReader(const PngReader&) = delete;
    PngReader& operator=(const PngReader&) = delete;

    png_structp png() const { return png_; }
    png_infop info() const { return info_; }

  private:
    png_structp png_ = nullptr;
    png_infop info_ = nullptr;
};

// --- setjmp frames: libpng calls only, no C++ objects, false when libpng failed. ---

bool png_step_read_info(png_structp png, png_infop info, PngReadState* state) {
    if (setjmp(png_jmpbuf(png))) {
        return false;
    }
    png_set_read_fn(png, state, png_on_read);
    // The PNG maximum; DecodeLimits are applied by kiln so that they report TOO_LARGE.
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);
    png_get_IHDR(png, info, &state->width, &state->height, &state->bit_depth, &state->color_type,
                 nullptr, nullptr, nullptr);
    state->has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    return true;
}

bool png_step_prepare(png_structp png, png_infop info, PngReadState* state) {
    if (setjmp(png_jmpbuf(png))) {
        return false;
    }
    if (state->color_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
    }
    if (state->color_type == PNG_COLOR_TYPE_GRAY && state->bit_depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    if (state->has_trns) {
        png_set_tRNS_to_alpha(png);
    }
    if (state->bit_depth == 16 && std::endian::native == std::endian::little) {
        png_set_swap(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    state->channels_out = png_get_channels(png, info);
    state->bit_depth_out = png_get_bit_depth(png, info);
    state->rowbytes = png_get_rowbytes(png, info);
    return true;
}

bool png_step_read_image(png_structp png, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) {
        return false;
    }
    png_read_image(png, rows);
    // Up to IEND, so that a truncated file is always BAD_FILE, not only when the cut happens
    // to fall inside the pixel data. Damaged ancillary chunks there are only warnings.
    png_read_end(png, nullptr);
    return true;
}

// --- C++ frames ---

[[noreturn]] void png_throw(const PngReadState& state) {
    throw core::Error(core::ErrorCode::BAD_FILE,
                      std::string("PNG decode failed: ") + state.message);
}

int png_output_channels(const PngReadState& state) {
    switch (state.color_type) {
        case PNG_COLOR_TYPE_GRAY:
            return state.has_trns ? 2 : 1;
        case PNG_COLOR_TYPE_GRAY_ALPHA:
            return 2;
        case PNG_COLOR_TYPE_PALETTE:
        case PNG_COLOR_TYPE_RGB:
            return state.has_trns ? 4 : 3;
        case PNG_COLOR_TYPE_RGB_ALPHA:
            return 4;
        default:
            // png_read_info rejects other color types; kept as a guard.
            throw core::Error(core::ErrorCode::BAD_FILE,
                              "PNG has invalid color type " + std::to_string(state.color_type));
    }
}

PngReadState png_state_for(std::span<const uint8_t> bytes) {
    PngReadState state;
    state.data = bytes.data();
    state.size = bytes.size();
    return state;
}

}  // namespace

ImageHeader png_read_header(std::span<const uint8_t> bytes) {
    PngReadState state = png_state_for(bytes);
    PngReader reader(&state);
    if (!png_step_read_info(reader.png(), reader.info(), &state)) {
        png_throw(state);
    }
    return ImageHeader{
        .format = ImageFormat::PNG,
        .width = static_cast<int>(state.width),
        .height = static_cast<int>(state.height),
        .channels = png_output_channels(state),
        .bit_depth = state.bit_depth == 16 ? 16 : 8,
    };
}

Image png_decode(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
    PngReadState state = png_state_for(bytes);
    PngReader reader(&state);
    if (!png_step_read_info(reader.png(), reader.info(), &state)) {
        png_throw(state);
    }
    // Before png_read_update_info, which already allocates row buffers.
    check_decode_limits(state.width, state.height, limits);
    const int channels = png_output_channels(state);
    if (!png_step_prepare(reader.png(), reader.info(), &state)) {
        png_throw(state);
    }
    const int bit_depth = state.bit_depth == 16 ? 16 : 8;
    if (state.channels_out != channels || state.bit_depth_out != bit_depth ||
        state.rowbytes != static_cast<size_t>(state.width) * channels * (bit_depth / 8)) {
        throw core::Error(core::ErrorCode::INTERNAL,
                          "libpng output layout differs from the expected one");
    }

    Image image;
    image.width = static_cast<int>(state.width);
    image.height = static_cast<int>(state.height);
    image.channels = channels;
    image.bit_depth = bit_depth;
    image.samples = pixel_buffer_allocate(image.sample_count());
    // libpng writes bytes straight into the sample buffer: 16-bit rows are host-order
    // uint16_t already (png_set_swap), 8-bit rows are widened afterwards.
    std::vector<png_bytep> rows(state.height);
    auto* base = reinterpret_cast<png_bytep>(image.samples.data());
    for (size_t y = 0; y < rows.size(); ++y) {
        rows[y] = base + y * state.rowbytes;
    }
    if (!png_step_read_image(reader.png(), rows.data())) {
        png_throw(state);
    }
    if (bit_depth == 8) {
        pixel_buffer_widen_8_to_16(image.samples, image.sample_count());
    }
    return image;
}

}  // namespace kiln::image
