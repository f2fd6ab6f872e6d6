#include "engine/graph/deconv_lowering.h"

#include <memory>

#include "core/error.h"

namespace kiln::engine {

SubPixelConv subpixel_conv_of(const ConvWeights& deconv, int in_h, int in_w) {
    const int s = deconv.stride;
    const int k = deconv.kernel;
    const int p = deconv.padding();
    const int ci = deconv.in_channels;
    const int co = deconv.out_channels;
    const int kk = (k + s - 1) / s;  // K: taps per phase
    SubPixelConv out;
    out.factor = s;
    out.crop = p;
    out.out_h = deconv_output_size(in_h, deconv);
    out.out_w = deconv_output_size(in_w, deconv);
    out.conv.in_channels = ci;
    out.conv.out_channels = co * s * s;
    out.conv.kernel = kk;
    out.conv.stride = 1;
    out.conv.pad = kk - 1;
    const auto& w = *deconv.weight;  // [ci][co][k][k]
    std::vector<float> v(static_cast<size_t>(co) * s * s * ci * kk * kk, 0.0f);
    for (int o = 0; o < co; ++o) {
        for (int ry = 0; ry < s; ++ry) {
            for (int rx = 0; rx < s; ++rx) {
                const int oc = (o * s + ry) * s + rx;  // pixel shuffle's channel order
                for (int i = 0; i < ci; ++i) {
                    for (int a = 0; a < kk; ++a) {
                        const int ky = s * (kk - 1 - a) + ry;
                        if (ky >= k)
                            continue;
                        for (int b = 0; b < kk; ++b) {
                            const int kx = s * (kk - 1 - b) + rx;
                            if (kx >= k)
                                continue;
                            v[((static_cast<size_t>(oc) * ci + i) * kk + a) * kk + b] =
                                w[((static_cast<size_t>(i) * co + o) * k + ky) * k + kx];
                        }
                    }
                }
            }
        }
    }
    out.conv.weight = std::make_shared<const std::vector<float>>(std::move(v));
    if (deconv.bias) {
        std::vector<float> bias(static_cast<size_t>(co) * s * s);
        for (int o = 0; o < co; ++o)
            for (int r = 0; r < s * s; ++r)
                bias[static_cast<size_t>(o * s * s + r)] = (*deconv.bias)[static_cast<size_t>(o)];
        out.conv.bias = std::make_shared<const std::vector<float>>(std::move(bias));
    }
    // The shuffled full output, s (n + K - 1), covers the transposed convolution's
    // (n - 1) s + k plus the padding to crop.
    if (out.out_h <= 0 || out.out_w <= 0 || out.crop + out.out_h > s * (in_h + kk - 1) ||
        out.crop + out.out_w > s * (in_w + kk - 1)) {
        throw core::Error(core::ErrorCode::INTERNAL, "transposed convolution geometry");
    }
    return out;
}

}  // namespace kiln::engine
