#include "engine/pipeline/upscale_image.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kiln::engine {

namespace {

bool is_gray(const image::Image& img) {
    return img.channels <= 2;
}

// Total tiles of the RGB pass and the alpha pass, reported as one count.
struct TileCounter {
    const UpscaleHooks* hooks;
    int passes;
    int pass = 0;
    void operator()(int done, int total) const {
        if (hooks->on_tile)
            hooks->on_tile(pass * total + done, passes * total);
    }
};

}  // namespace

FloatImage image_rgb(const image::Image& img) {
    FloatImage out(img.height, img.width, 3);
    const float inv = 1.0f / static_cast<float>(img.max_value());
    const size_t pixels = static_cast<size_t>(img.width) * static_cast<size_t>(img.height);
    const size_t c = static_cast<size_t>(img.channels);
    for (size_t p = 0; p < pixels; ++p) {
        const uint16_t* s = img.samples.data() + p * c;
        float* d = out.data.data() + p * 3;
        if (is_gray(img)) {
            d[0] = d[1] = d[2] = static_cast<float>(s[0]) * inv;
        } else {
            for (int k = 0; k < 3; ++k)
                d[k] = static_cast<float>(s[k]) * inv;
        }
    }
    return out;
}

namespace {

// The alpha plane in [0, 1], repeated over `channels` channels (3 for a pass through the
// model, 1 for a resize).
FloatImage image_alpha(const image::Image& img, int channels) {
    if (!img.has_alpha())
        throw core::Error(core::ErrorCode::INTERNAL, "image has no alpha");
    FloatImage out(img.height, img.width, channels);
    const float inv = 1.0f / static_cast<float>(img.max_value());
    const size_t pixels = static_cast<size_t>(img.width) * static_cast<size_t>(img.height);
    const size_t c = static_cast<size_t>(img.channels);
    const auto k = static_cast<size_t>(channels);
    for (size_t p = 0; p < pixels; ++p) {
        const float a = static_cast<float>(img.samples[p * c + c - 1]) * inv;
        std::fill_n(out.data.data() + p * k, k, a);
    }
    return out;
}

}  // namespace

FloatImage image_alpha_rgb(const image::Image& img) {
    return image_alpha(img, 3);
}

FloatImage image_alpha_plane(const image::Image& img) {
    return image_alpha(img, 1);
}

uint16_t quantize(float v, int max_value) {
    const float scaled = std::floor(v * static_cast<float>(max_value) + 0.5f);
    if (!(scaled > 0.0f))
        return 0;  // also NaN
    if (scaled >= static_cast<float>(max_value))
        return static_cast<uint16_t>(max_value);
    return static_cast<uint16_t>(scaled);
}

image::Image upscale_image(Upscaler& upscaler,
                           const image::Image& img,
                           const UpscaleOptions& options,
                           const UpscaleHooks& hooks) {
    const bool alpha_by_model =
        img.has_alpha() && upscaler.model().alpha_rule() == AlphaRule::MODEL;
    TileCounter counter{&hooks, alpha_by_model ? 2 : 1};
    UpscaleHooks pass_hooks;
    pass_hooks.cancel = hooks.cancel;
    pass_hooks.on_tile = [&](int done, int total) { counter(done, total); };

    const FloatImage rgb = upscaler.run(image_rgb(img), options, pass_hooks);
    FloatImage alpha;
    if (alpha_by_model) {
        counter.pass = 1;
        alpha = upscaler.run(image_alpha_rgb(img), options, pass_hooks);
    } else if (img.has_alpha()) {
        alpha = resize_bicubic(image_alpha_plane(img), rgb.h, rgb.w);
    }

    image::Image out;
    out.width = rgb.w;
    out.height = rgb.h;
    out.channels = img.channels;
    out.bit_depth = img.bit_depth;
    const int max = img.max_value();
    const size_t pixels = static_cast<size_t>(rgb.w) * static_cast<size_t>(rgb.h);
    const size_t c = static_cast<size_t>(out.channels);
    out.samples.resize(pixels * c);
    for (size_t p = 0; p < pixels; ++p) {
        const float* v = rgb.data.data() + p * 3;
        uint16_t* d = out.samples.data() + p * c;
        if (is_gray(img)) {
            // OpenCV's RGB -> gray weights, as Real-ESRGAN converts back.
            d[0] = quantize(0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2], max);
        } else {
            for (int k = 0; k < 3; ++k)
                d[k] = quantize(v[k], max);
        }
        if (alpha.c == 1) {
            d[c - 1] = quantize(alpha.data[p], max);
        } else if (img.has_alpha()) {
            const float* a = alpha.data.data() + p * 3;
            d[c - 1] = quantize(0.299f * a[0] + 0.587f * a[1] + 0.114f * a[2], max);
        }
    }
    return out;
}

}  // namespace kiln::engine
