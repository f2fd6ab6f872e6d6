#include "engine/models/rrdbnet.h"

#include <string>

#include "core/error.h"

namespace kiln::engine {

namespace {

Epilogue leaky_relu() {
    Epilogue e;
    e.act = Activation::LEAKY_RELU;
    e.alpha = 0.2f;
    return e;
}

}  // namespace

RRDBNet::RRDBNet(const weights::RRDBNetConfig& config, weights::StateDict weights)
    : Model("RRDBNet", config.scale, std::move(weights)), config_(config) {
    const int channels_in = 3;
    if (config.num_in_ch == channels_in * 4) {
        unshuffle_ = 2;
    } else if (config.num_in_ch == channels_in * 16) {
        unshuffle_ = 4;
    } else if (config.num_in_ch != channels_in) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "RRDBNet with " + std::to_string(config.num_in_ch) + " input channels");
    }
    if (config.num_out_ch != 3) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "RRDBNet with " + std::to_string(config.num_out_ch) + " output channels");
    }
}

// x: [h, w, 3] -> [h*scale, w*scale, 3]
ValueId RRDBNet::build(Graph& g, ValueId x) const {
    const int nf = config_.num_feat;
    const int gc = config_.num_grow_ch;
    const int dense = nf + 4 * gc;
    ValueId in = unshuffle_ > 1 ? g.pixel_unshuffle(x, unshuffle_) : x;  // [h/u, w/u, 3u²]
    const int h = g.value(in).h;
    const int w = g.value(in).w;

    // Every residual dense block reads the concatenation of its input and its four
    // intermediate outputs: one buffer of nf + 4 gc channels per block, written in slices.
    ValueId block_buffer = g.buffer(h, w, dense);
    const ValueId feat = g.conv2d("conv_first", in, conv("conv_first"), {},
                                  g.channels(block_buffer, 0, nf));  // [h, w, nf]
    ValueId body = feat;
    for (int b = 0; b < config_.num_block; ++b) {
        const ValueId rrdb_in = body;
        for (int r = 1; r <= 3; ++r) {
            const std::string prefix =
                "body." + std::to_string(b) + ".rdb" + std::to_string(r) + ".conv";
            const ValueId rdb_in = body;
            for (int k = 1; k <= 4; ++k) {
                g.conv2d(prefix + std::to_string(k), g.channels(block_buffer, 0, nf + (k - 1) * gc),
                         conv(prefix + std::to_string(k)), leaky_relu(),
                         g.channels(block_buffer, nf + (k - 1) * gc, gc));
            }
            // x5 * 0.2 + x, and for the third block also (...) * 0.2 + rrdb input.
            Epilogue residual;
            residual.adds.push_back({rdb_in, 0.2f});
            if (r == 3)
                residual.adds.push_back({rrdb_in, 0.2f});
            const bool last = b == config_.num_block - 1 && r == 3;
            ValueId next_buffer = last ? kNoValue : g.buffer(h, w, dense);
            body = g.conv2d(prefix + "5", g.channels(block_buffer, 0, dense), conv(prefix + "5"),
                            residual, last ? kNoValue : g.channels(next_buffer, 0, nf));
            block_buffer = next_buffer;
        }
    }
    Epilogue trunk;
    trunk.adds.push_back({feat, 1.0f});
    ValueId up = g.conv2d("conv_body", body, conv("conv_body"), trunk);  // feat + body
    for (int u = 1; u <= config_.num_upsample; ++u) {
        const std::string name = "conv_up" + std::to_string(u);
        up = g.conv2d(name, g.upsample_nearest(up, 2), conv(name), leaky_relu());
    }
    const ValueId hr = g.conv2d("conv_hr", up, conv("conv_hr"), leaky_relu());
    return g.conv2d("conv_last", hr, conv("conv_last"), {});
}

}  // namespace kiln::engine
