#include "engine/pipeline/float_image.h"

#include <algorithm>

#include "core/error.h"
#include "core/index_math.h"

namespace kiln::engine {

FloatImage reflect_pad(const FloatImage& in, int top, int bottom, int left, int right) {
    FloatImage out(in.h + top + bottom, in.w + left + right, in.c);
    for (int y = 0; y < out.h; ++y) {
        const int sy = core::reflect_index(y - top, in.h);
        for (int x = 0; x < out.w; ++x) {
            const int sx = core::reflect_index(x - left, in.w);
            std::copy_n(in.pixel(sy, sx), in.c, out.pixel(y, x));
        }
    }
    return out;
}

FloatImage replicate_pad(const FloatImage& in, int top, int bottom, int left, int right) {
    FloatImage out(in.h + top + bottom, in.w + left + right, in.c);
    for (int y = 0; y < out.h; ++y) {
        const int sy = std::clamp(y - top, 0, in.h - 1);
        for (int x = 0; x < out.w; ++x) {
            const int sx = std::clamp(x - left, 0, in.w - 1);
            std::copy_n(in.pixel(sy, sx), in.c, out.pixel(y, x));
        }
    }
    return out;
}

FloatImage zero_pad(const FloatImage& in, int top, int bottom, int left, int right) {
    FloatImage out(in.h + top + bottom, in.w + left + right, in.c);  // zero-filled
    for (int y = 0; y < in.h; ++y) {
        std::copy_n(in.pixel(y, 0), static_cast<size_t>(in.w) * static_cast<size_t>(in.c),
                    out.pixel(top + y, left));
    }
    return out;
}

FloatImage crop(const FloatImage& in, int y0, int x0, int h, int w) {
    if (y0 < 0 || x0 < 0 || h < 0 || w < 0 || y0 + h > in.h || x0 + w > in.w) {
        throw core::Error(core::ErrorCode::INTERNAL, "crop outside the image");
    }
    FloatImage out(h, w, in.c);
    for (int y = 0; y < h; ++y) {
        std::copy_n(in.pixel(y0 + y, x0), static_cast<size_t>(w) * static_cast<size_t>(in.c),
                    out.pixel(y, 0));
    }
    return out;
}

}  // namespace kiln::engine
