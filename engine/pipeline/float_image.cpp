#include "engine/pipeline/float_image.h"

#include <algorithm>

#include "core/error.h"
#include "core/index_math.h"
#include "kernels/resample_math.h"

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

FloatImage resize_bicubic(const FloatImage& in, int out_h, int out_w) {
    FloatImage out(out_h, out_w, in.c);
    for (int y = 0; y < out_h; ++y) {
        const kernels::CubicTaps ty = kernels::cubic_taps(y, in.h, out_h);
        for (int x = 0; x < out_w; ++x) {
            const kernels::CubicTaps tx = kernels::cubic_taps(x, in.w, out_w);
            for (int ch = 0; ch < in.c; ++ch) {
                float acc = 0.0f;
                for (int i = 0; i < 4; ++i) {
                    const int sy = kernels::clamp_index(ty.first + i, in.h);
                    float row = 0.0f;
                    for (int j = 0; j < 4; ++j)
                        row += tx.w[j] * in.pixel(sy, kernels::clamp_index(tx.first + j, in.w))[ch];
                    acc += ty.w[i] * row;
                }
                out.pixel(y, x)[ch] = acc;
            }
        }
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
