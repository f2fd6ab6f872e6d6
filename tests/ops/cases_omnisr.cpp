// OmniSR's ops: grouped and depthwise convolutions, ESA's max pool and bilinear resize to any
// size, window attention (block and grid groups, with and without the relative position
// bias) and channel attention (block and grid groups), on NHWC inputs and on blocked
// buffers with heads that do not start on a block; and ESA whole.
#include <cmath>
#include <memory>
#include <string>

#include "tests/ops/case_families.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_builders.h"

namespace kiln::test {

using engine::Activation;
using engine::ConvWeights;
using engine::Graph;
using engine::PixelGroups;
using engine::ValueId;
using engine::WindowAttentionParams;

namespace {

// weight [out, in / groups, k, k].
ConvWeights grouped_conv(int in, int out, int groups, int k, uint32_t seed) {
    ConvWeights w = random_conv(in / groups, out, k, seed);
    w.in_channels = in;
    w.groups = groups;
    return w;
}

std::shared_ptr<const std::vector<float>> shared(std::vector<float> v) {
    return std::make_shared<const std::vector<float>>(std::move(v));
}

WindowAttentionParams window_params(int window, PixelGroups groups, int heads, int c) {
    WindowAttentionParams p;
    p.window = window;
    p.groups = groups;
    p.heads = heads;
    p.scale = 1.0f / std::sqrt(static_cast<float>(c / heads));
    return p;
}

// Positive temperatures of 1 + U(-0.5, 0.5), times `scale`.
std::shared_ptr<const std::vector<float>> temperatures(int heads, uint32_t seed, float scale) {
    std::vector<float> t = random_vector(static_cast<size_t>(heads), seed, 0.5f);
    for (float& v : t)
        v = (1.0f + v) * scale;
    return shared(std::move(t));
}

// ESA as OmniSR builds it: 1x1 c -> f; 3x3 stride 2 unpadded; max pool 7/3; 3x3; bilinear
// back to the input's size; + 1x1 of the first conv's output; 1x1 f -> c with sigmoid; x *.
ValueId esa(Graph& g, ValueId x, int c, int f, uint32_t seed) {
    const engine::Value in = g.value(x);
    const ValueId c1 = g.conv2d("conv1", x, random_conv(c, f, 1, seed), epilogue(Activation::NONE));
    ConvWeights down = random_conv(f, f, 3, seed + 2);
    down.stride = 2;
    down.pad = 0;
    const ValueId c2 = g.conv2d("conv2", c1, down, epilogue(Activation::NONE));
    const ValueId pooled = g.max_pool(c2, 7, 3);
    const ValueId c3 =
        g.conv2d("conv3", pooled, random_conv(f, f, 3, seed + 4), epilogue(Activation::NONE));
    engine::Epilogue plus_up;
    plus_up.adds.push_back({g.resize_bilinear(c3, in.h, in.w), 1.0f});
    const ValueId cf = g.conv2d("conv_f", c1, random_conv(f, f, 1, seed + 6), plus_up);
    const ValueId m =
        g.conv2d("conv4", cf, random_conv(f, c, 1, seed + 8), epilogue(Activation::SIGMOID));
    return g.mul(x, m);
}

void add_grouped_convolutions(std::vector<OpCase>& v) {
    v.push_back({.name = "depthwise conv3x3 c20 gelu (nhwc input)",
                 .inputs = {{9, 11, 20}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.conv2d("dw", x[0], grouped_conv(20, 20, 20, 3, 31),
                                         epilogue(Activation::GELU));
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
    v.push_back({.name = "depthwise conv3x3 c64 of a blocked buffer, no bias, residual",
                 .inputs = {{10, 12, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         const ValueId a = conv_layer(g, x[0], 64, 3, 32);
                         ConvWeights w = grouped_conv(64, 64, 64, 3, 33);
                         w.bias = nullptr;
                         engine::Epilogue e;
                         e.adds.push_back({a, 1.0f});
                         return g.conv2d("dw", a, w, e);
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
    v.push_back({.name = "grouped conv3x3 2 groups 16->32",
                 .inputs = {{8, 7, 16}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.conv2d("gc", x[0], grouped_conv(16, 32, 2, 3, 34),
                                         epilogue(Activation::NONE));
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
}

void add_pool_and_resize(std::vector<OpCase>& v) {
    v.push_back({.name = "max pool 7/3 c16 nhwc",
                 .inputs = {{23, 29, 16}},
                 .build = [](Graph& g, const Ids& x) { return g.max_pool(x[0], 7, 3); },
                 .cpu = kCpuOp,
                 .cuda = kCudaOp});
    v.push_back(
        {.name = "max pool 3/2 of a blocked padded buffer (21 ch)",
         .inputs = {{12, 9, 3}},
         .build = [](Graph& g,
                     const Ids& x) { return g.max_pool(conv_layer(g, x[0], 21, 3, 35), 3, 2); },
         .cpu = kCpuConv,
         .cuda = kCudaConv});
    v.push_back({.name = "resize bilinear 3x4 -> 23x29 c16",
                 .inputs = {{3, 4, 16}},
                 .build = [](Graph& g, const Ids& x) { return g.resize_bilinear(x[0], 23, 29); },
                 .cpu = kCpuOp,
                 .cuda = kCudaOp});
    v.push_back({.name = "resize bilinear 13x11 -> 6x17 c5 (down and up)",
                 .inputs = {{13, 11, 5}},
                 .build = [](Graph& g, const Ids& x) { return g.resize_bilinear(x[0], 6, 17); },
                 .cpu = kCpuOp,
                 .cuda = kCudaOp});
}

void add_window_attention(std::vector<OpCase>& v) {
    for (const PixelGroups groups : {PixelGroups::BLOCKS, PixelGroups::GRID}) {
        const std::string kind = groups == PixelGroups::BLOCKS ? "blocks" : "grid";
        v.push_back({.name = "window attention " + kind + " ws4 16x24 c32 4 heads, bias",
                     .inputs = {{16, 24, 96}},
                     .build =
                         [groups](Graph& g, const Ids& x) {
                             WindowAttentionParams p = window_params(4, groups, 4, 32);
                             p.bias = shared(random_vector(4 * 16 * 16, 36, 2.0f));
                             return g.window_attention("wa", x[0], p);
                         },
                     .cpu = kCpuOp,
                     .cuda = kCudaAttn});
        v.push_back({.name = "channel attention " + kind + " ws4 16x20 c64 4 heads",
                     .inputs = {{16, 20, 192}},
                     .build =
                         [groups](Graph& g, const Ids& x) {
                             WindowAttentionParams p = window_params(4, groups, 4, 64);
                             p.temperature = temperatures(4, 37, 1.0f);
                             return g.channel_attention("ca", x[0], p);
                         },
                     .cpu = kCpuOp,
                     .cuda = kCudaAttn});
    }
    v.push_back(
        {.name = "window attention grid ws8 16x16 no bias, qkv of a 1x1 conv (3 heads of 8)",
         .inputs = {{16, 16, 3}},
         .build =
             [](Graph& g, const Ids& x) {
                 const ValueId qkv = conv_layer(g, x[0], 72, 1, 38);
                 return g.window_attention("wa", qkv, window_params(8, PixelGroups::GRID, 3, 24));
             },
         .cpu = kCpuConv,
         .cuda = kCudaAttn});
    v.push_back({.name = "channel attention grid ws4 24x16, qkv of a 1x1 conv (3 heads of 8), t x4",
                 .inputs = {{24, 16, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         const ValueId qkv = conv_layer(g, x[0], 72, 1, 39);
                         WindowAttentionParams p = window_params(4, PixelGroups::GRID, 3, 24);
                         p.temperature = temperatures(3, 40, 4.0f);
                         return g.channel_attention("ca", qkv, p);
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaAttn});
}

void add_esa(std::vector<OpCase>& v) {
    v.push_back({.name = "ESA block c32 f16 on 24x20",
                 .inputs = {{24, 20, 32}},
                 .build = [](Graph& g, const Ids& x) { return esa(g, x[0], 32, 16, 41); },
                 .cpu = kCpuConv,
                 .cuda = widened(kCudaConv, 3, 1)});
}

}  // namespace

void add_omnisr_cases(std::vector<OpCase>& v) {
    add_grouped_convolutions(v);
    add_pool_and_resize(v);
    add_window_attention(v);
    add_esa(v);
}

}  // namespace kiln::test
