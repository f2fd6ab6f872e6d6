#include "engine/models/srvgg.h"

#include <string>

namespace kiln::engine {

SRVGGNetCompact::SRVGGNetCompact(const weights::SRVGGNetCompactConfig& config,
                                 int scale,
                                 weights::StateDict weights)
    : Model("SRVGGNetCompact", scale, std::move(weights)), config_(config) {}

Epilogue SRVGGNetCompact::activation(int body_index) const {
    Epilogue e;
    switch (config_.act) {
        case weights::SRVGGNetCompactConfig::Act::RELU:
            e.act = Activation::RELU;
            break;
        case weights::SRVGGNetCompactConfig::Act::LEAKY_RELU:
            e.act = Activation::LEAKY_RELU;
            e.alpha = 0.1f;
            break;
        case weights::SRVGGNetCompactConfig::Act::PRELU:
            e.act = Activation::PRELU;
            e.prelu_slope = values("body." + std::to_string(body_index) + ".weight");
            break;
    }
    return e;
}

// x: [h, w, 3] -> [h*r, w*r, 3]
ValueId SRVGGNetCompact::build(Graph& g, ValueId x) const {
    ValueId y = g.conv2d("body.0", x, conv("body.0"), activation(1));
    for (int i = 0; i < config_.num_conv; ++i) {
        const int k = 2 + 2 * i;
        const std::string name = "body." + std::to_string(k);
        y = g.conv2d(name, y, conv(name), activation(k + 1));
    }
    const std::string last = "body." + std::to_string(2 + 2 * config_.num_conv);
    y = g.conv2d(last, y, conv(last), {});  // [h, w, 3 r²]
    const int r = config_.upscale;
    const ValueId out = g.add(g.pixel_shuffle(y, r), g.upsample_nearest(x, r));
    if (scale() == r)
        return out;
    const Value& in = g.value(x);
    return g.resize_bicubic(out, in.h * scale(), in.w * scale());
}

}  // namespace kiln::engine
