// PNG encoding with libpng, to memory. The setjmp discipline is the one of png_decode.cpp.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include "core/error.h"
#include "image/image.h"

namespace kiln::image {
namespace {

// Everything the callbacks and the setjmp frames touch. `out` is owned by a C++ frame above.
struct PngWriteState {
    std::vector<uint8_t>* out = nullptr;
    bool out_of_memory = false;
    char message[256] = {};
};

void png_on_write_error(png_structp png, png_const_charp message) {
    auto* state = static_cast<PngWriteState*>(png_get_error_ptr(png));
    std::snprintf(state->message, sizeof state->message, "%s", message);
    png_longjmp(png, 1);
}

void png_on_write_warning(png_structp, png_const_charp) {}

void png_on_write(png_structp png, png_bytep data, size_t length) {
    auto* state = static_cast<PngWriteState*>(png_get_io_ptr(png));
    bool grown = true;
    try {
        state->out->insert(state->out->end(), data, data + length);
    } catch (const std::bad_alloc&) {
        grown = false;
    }
    // Outside the handler: longjmp out of a catch block would leak the exception.
    if (!grown) {
        state->out_of_memory = true;
        png_error(png, "out of memory");
    }
}

void png_on_flush(png_structp) {}

class PngWriter {
  public:
    explicit PngWriter(PngWriteState* state) {
        png_ = png_create_write_struct(PNG_LIBPNG_VER_STRING, state, png_on_write_error,
                                       png_on_write_warning);
        if (png_ != nullptr) {
            info_ = png_create_info_struct(png_);
        }
        if (png_ == nullptr || info_ == nullptr) {
            png_destroy_write_struct(&png_, &info_);
            throw core::Error(core::ErrorCode::OUT_OF_MEMORY, "cannot create a libpng writer");
        }
    }
    ~PngWriter() { png_destroy_write_struct(&png_, &info_); }
    PngWriter(const PngWriter&) = delete;
    PngWriter& operator=(const PngWriter&) = delete;

    png_structp png() const { return png_; }
    png_infop info() const { return info_; }

  private:
    png_structp png_ = nullptr;
    png_infop info_ = nullptr;
};

// Plain view of what the setjmp frame writes; row_buffer has room for one encoded row.
struct PngWriteJob {
    const Image* image = nullptr;
    int compression_level = 0;
    int color_type = 0;
    png_bytep row_buffer = nullptr;
};

void png_pack_row(const Image& image, int y, png_bytep row) {
    const size_t count = static_cast<size_t>(image.width) * image.channels;
    const uint16_t* src = image.samples.data() + static_cast<size_t>(y) * count;
    if (image.bit_depth == 8) {
        for (size_t i = 0; i < count; ++i) {
            row[i] = static_cast<png_byte>(src[i]);
        }
    } else {  // PNG stores 16-bit samples big-endian
        for (size_t i = 0; i < count; ++i) {
            row[2 * i] = static_cast<png_byte>(src[i] >> 8);
            row[2 * i + 1] = static_cast<png_byte>(src[i] & 0xff);
        }
    }
}

// setjmp frame: libpng calls only, false when libpng failed.
bool png_step_write(png_structp png, png_infop info, PngWriteState* state, const PngWriteJob* job) {
    if (setjmp(png_jmpbuf(png))) {
        return false;
    }
    const Image& image = *job->image;
    png_set_write_fn(png, state, png_on_write, png_on_flush);
    png_set_compression_level(png, job->compression_level);
    png_set_IHDR(png, info, static_cast<png_uint_32>(image.width),
                 static_cast<png_uint_32>(image.height), image.bit_depth, job->color_type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < image.height; ++y) {
        png_pack_row(image, y, job->row_buffer);
        png_write_row(png, job->row_buffer);
    }
    png_write_end(png, nullptr);
    return true;
}

void png_check_encodable(const Image& image, int compression_level) {
    auto invalid = [](const std::string& what) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "cannot encode PNG: " + what);
    };
    if (image.width <= 0 || image.height <= 0) {
        invalid("empty image (" + std::to_string(image.width) + "x" + std::to_string(image.height) +
                ")");
    }
    if (image.channels < 1 || image.channels > 4) {
        invalid(std::to_string(image.channels) + " channels (expected 1 to 4)");
    }
    if (image.bit_depth != 8 && image.bit_depth != 16) {
        invalid("bit depth " + std::to_string(image.bit_depth) + " (expected 8 or 16)");
    }
    if (image.samples.size() != image.sample_count()) {
        invalid(std::to_string(image.samples.size()) + " samples for a " +
                std::to_string(image.width) + "x" + std::to_string(image.height) + "x" +
                std::to_string(image.channels) + " image");
    }
    if (compression_level < 0 || compression_level > 9) {
        invalid("compression level " + std::to_string(compression_level) + " (expected 0 to 9)");
    }
    const auto max_value = static_cast<uint16_t>(image.max_value());
    for (const uint16_t sample : image.samples) {
        if (sample > max_value) {
            invalid("sample value " + std::to_string(sample) + " over the " +
                    std::to_string(image.bit_depth) + "-bit maximum");
        }
    }
}

int png_color_type(int channels) {
    switch (channels) {
        case 1:
            return PNG_COLOR_TYPE_GRAY;
        case 2:
            return PNG_COLOR_TYPE_GRAY_ALPHA;
        case 3:
            return PNG_COLOR_TYPE_RGB;
        default:
            return PNG_COLOR_TYPE_RGB_ALPHA;
    }
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& image, int compression_level) {
    png_check_encodable(image, compression_level);
    std::vector<uint8_t> out;
    std::vector<png_byte> row(static_cast<size_t>(image.width) * image.channels *
                              (image.bit_depth / 8));
    PngWriteState state;
    state.out = &out;
    const PngWriteJob job{
        .image = &image,
        .compression_level = compression_level,
        .color_type = png_color_type(image.channels),
        .row_buffer = row.data(),
    };
    PngWriter writer(&state);
    if (!png_step_write(writer.png(), writer.info(), &state, &job)) {
        throw core::Error(
            state.out_of_memory ? core::ErrorCode::OUT_OF_MEMORY : core::ErrorCode::INTERNAL,
            std::string("PNG encode failed: ") + state.message);
    }
    return out;
}

}  // namespace kiln::image
