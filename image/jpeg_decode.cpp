// JPEG decoding with libjpeg-turbo, from memory.
//
// libjpeg reports errors through error_exit, which must not return; it longjmps. As in
// png_decode.cpp, setjmp lives only in small "step" functions that hold pointers to plain
// structs, and the C++ frames above them own every resource and throw kiln::core::Error.
//
// EXIF orientation is ignored: pixels come back in stored order. Models work on stored pixels
// and the encoded result carries no EXIF, so a client that relies on the tag rotates itself.
// CMYK and YCCK JPEGs are UNSUPPORTED: a faithful conversion needs the embedded ICC profile
// (and Adobe's inverted-ink convention), and a naive one would quietly change colors.
#include "image/jpeg_decode.h"

// jpeglib.h uses size_t and FILE without including their headers.
#include <cstddef>
#include <cstdio>

#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <string>

#include "core/error.h"
#include "image/pixel_buffer.h"

namespace kiln::image {
namespace {

// A crafted progressive JPEG can hold thousands of tiny scans, each a full pass over the
// coefficients; real encoders write about ten.
constexpr int kMaxProgressiveScans = 500;

// Everything the callbacks and the setjmp frames touch: plain data, no destructors.
struct JpegState {
    jpeg_decompress_struct cinfo;
    jpeg_error_mgr error;  // libjpeg hands callbacks &error; jpeg_state_of maps it back
    jpeg_progress_mgr progress;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

JpegState* jpeg_state_of(j_common_ptr cinfo) {
    // client_data is set to the owning JpegState before jpeg_create_decompress.
    return static_cast<JpegState*>(cinfo->client_data);
}

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
    JpegState* state = jpeg_state_of(cinfo);
    std::longjmp(state->jump, 1);
}

[[noreturn]] void jpeg_on_error_exit(j_common_ptr cinfo) {
    JpegState* state = jpeg_state_of(cinfo);
    (*cinfo->err->format_message)(cinfo, state->message);
    jpeg_fail(cinfo);
}

// Replaces libjpeg's printing to stderr. Warnings about damaged entropy data are tolerated (the
// image decodes, as in browsers) except running out of data: a truncated file is BAD_FILE.
void jpeg_on_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) {
        return;  // trace messages
    }
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_on_error_exit(cinfo);
    }
    cinfo->err->num_warnings++;
}

void jpeg_on_output_message(j_common_ptr) {}

void jpeg_on_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) {
        return;
    }
    const auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
    if (dinfo->input_scan_number > kMaxProgressiveScans) {
        JpegState* state = jpeg_state_of(cinfo);
        std::snprintf(state->message, sizeof state->message, "more than %d progressive scans",
                      kMaxProgressiveScans);
        jpeg_fail(cinfo);
    }
}

class JpegReader {
  public:
    JpegReader() {
        state_.cinfo.err = jpeg_std_error(&state_.error);
        state_.error.error_exit = jpeg_on_error_exit;
        state_.error.emit_message = jpeg_on_emit_message;
        state_.error.output_message = jpeg_on_output_message;
        state_.cinfo.client_data = &state_;
        state_.progress.progress_monitor = jpeg_on_progress;
    }
    // Safe on a struct that jpeg_create_decompress never finished: it checks cinfo.mem.
    ~JpegReader() { jpeg_destroy_decompress(&state_.cinfo); }
    JpegReader(const JpegReader&) = delete;
    JpegReader& operator=(const JpegReader&) = delete;

    JpegState* state() { return &state_; }

  private:
    JpegState state_{};
};

// --- setjmp frames: libjpeg calls only, no C++ objects, false when libjpeg failed. ---

bool jpeg_step_read_header(JpegState* state, const uint8_t* data, size_t size) {
    if (setjmp(state->jump)) {
        return false;
    }
    jpeg_create_decompress(&state->cinfo);  // keeps err and client_data
    state->cinfo.progress = &state->progress;
    jpeg_mem_src(&state->cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&state->cinfo, TRUE);
    return true;
}

bool jpeg_step_start(JpegState* state) {
    if (setjmp(state->jump)) {
        return false;
    }
    jpeg_start_decompress(&state->cinfo);
    return true;
}

bool jpeg_step_read_rows(JpegState* state, unsigned char* out, size_t stride) {
    if (setjmp(state->jump)) {
        return false;
    }
    while (state->cinfo.output_scanline < state->cinfo.output_height) {
        JSAMPROW row = out + static_cast<size_t>(state->cinfo.output_scanline) * stride;
        jpeg_read_scanlines(&state->cinfo, &row, 1);
    }
    // Up to EOI, so that a missing EOI is reported like any other truncation (the entropy
    // decoder reads ahead and usually hits the end anyway; this makes it deterministic).
    jpeg_finish_decompress(&state->cinfo);
    return true;
}

// --- C++ frames ---

[[noreturn]] void jpeg_throw(const JpegState& state) {
    throw core::Error(core::ErrorCode::BAD_FILE,
                      std::string("JPEG decode failed: ") + state.message);
}

void jpeg_read_header_checked(JpegState* state, std::span<const uint8_t> bytes) {
    if (!jpeg_step_read_header(state, bytes.data(), bytes.size())) {
        jpeg_throw(*state);
    }
}

int jpeg_output_channels(const jpeg_decompress_struct& cinfo) {
    switch (cinfo.jpeg_color_space) {
        case JCS_GRAYSCALE:
            return 1;
        case JCS_YCbCr:
        case JCS_RGB:
            return 3;
        case JCS_CMYK:
        case JCS_YCCK:
            throw core::Error(core::ErrorCode::UNSUPPORTED,
                              "CMYK/YCCK JPEG is not supported; convert the image to RGB");
        default:
            throw core::Error(core::ErrorCode::UNSUPPORTED,
                              "JPEG with " + std::to_string(cinfo.num_components) +
                                  " components in an unknown color space is not supported");
    }
}

}  // namespace

ImageHeader jpeg_read_header(std::span<const uint8_t> bytes) {
    JpegReader reader;
    JpegState* state = reader.state();
    jpeg_read_header_checked(state, bytes);
    return ImageHeader{
        .format = ImageFormat::JPEG,
        .width = static_cast<int>(state->cinfo.image_width),
        .height = static_cast<int>(state->cinfo.image_height),
        .channels = jpeg_output_channels(state->cinfo),
        .bit_depth = 8,
    };
}

Image jpeg_decode(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
    JpegReader reader;
    JpegState* state = reader.state();
    jpeg_decompress_struct& cinfo = state->cinfo;
    jpeg_read_header_checked(state, bytes);
    const int channels = jpeg_output_channels(cinfo);
    check_decode_limits(cinfo.image_width, cinfo.image_height, limits);

    cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    if (!jpeg_step_start(state)) {
        jpeg_throw(*state);
    }
    if (cinfo.output_components != channels || cinfo.output_width != cinfo.image_width ||
        cinfo.output_height != cinfo.image_height) {
        throw core::Error(core::ErrorCode::INTERNAL,
                          "libjpeg output layout differs from the expected one");
    }

    Image image;
    image.width = static_cast<int>(cinfo.output_width);
    image.height = static_cast<int>(cinfo.output_height);
    image.channels = channels;
    image.bit_depth = 8;
    image.samples = pixel_buffer_allocate(image.sample_count());
    auto* out = reinterpret_cast<unsigned char*>(image.samples.data());
    if (!jpeg_step_read_rows(state, out, static_cast<size_t>(image.width) * channels)) {
        jpeg_throw(*state);
    }
    pixel_buffer_widen_8_to_16(image.samples, image.sample_count());
    return image;
}

}  // namespace kiln::image
