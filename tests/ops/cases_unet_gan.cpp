// The UNet generators' ops (waifu2x CUNet and UpConv7, Real-CUGAN): unpadded and 2x2 stride-2
// convolutions, transposed convolutions as the models use them (2x2 stride 2, 4x4 stride 2
// pad 3, 5x5 stride 3 pad 2; thin and wide, with and without an activation), global average
// pooling, the channel scale of squeeze-excitation (MUL of a [1, 1, c] value) and same-shape
// MUL, crops of blocked and NHWC buffers, SIGMOID as a convolution epilogue, and the
// squeeze-excitation block and skip connection whole.
#include <string>

#include "tests/ops/case_families.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_builders.h"

namespace kiln::test {

using engine::Activation;
using engine::ConvWeights;
using engine::Graph;
using engine::ValueId;

namespace {

ConvWeights with_geometry(ConvWeights w, int stride, int pad) {
    w.stride = stride;
    w.pad = pad;
    return w;
}

// weight [in, out, k, k], as ConvTranspose2d.
ConvWeights random_deconv(int in, int out, int k, int stride, int pad, uint32_t seed) {
    return with_geometry(random_conv(in, out, k, seed), stride, pad);
}

// CUNet's and Real-CUGAN's SE block: mean -> 1x1 (c -> c/8) ReLU -> 1x1 sigmoid -> scale.
ValueId squeeze_excitation(Graph& g, ValueId x, int c, uint32_t seed) {
    const ValueId pooled = g.global_avg_pool(x);
    const ValueId squeezed =
        g.conv2d("se1", pooled, random_conv(c, c / 8, 1, seed), epilogue(Activation::RELU));
    const ValueId gate = g.conv2d("se2", squeezed, random_conv(c / 8, c, 1, seed + 2),
                                  epilogue(Activation::SIGMOID));
    return g.mul(x, gate);
}

void add_convolutions(std::vector<OpCase>& v) {
    v.push_back({.name = "conv3x3 pad 0 16->32 lrelu (valid)",
                 .inputs = {{11, 14, 16}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.conv2d("c", x[0], with_geometry(random_conv(16, 32, 3, 1), 1, 0),
                                         epilogue(Activation::LEAKY_RELU, 0.1f));
                     },
                 .cpu = {1e-9, 1e-7, 1e-4},
                 .cuda = kCudaConv});
    v.push_back({.name = "conv3x3 pad 0 3->32 (thin planar input)",
                 .inputs = {{9, 8, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.conv2d("c", x[0], with_geometry(random_conv(3, 32, 3, 2), 1, 0),
                                         epilogue(Activation::LEAKY_RELU, 0.1f));
                     },
                 .cpu = {1e-9, 1e-7, 1e-4},
                 .cuda = kCudaConv});
    for (const int size : {12, 13}) {
        v.push_back({.name = "conv2x2 stride 2 pad 0 32->64 lrelu, size " + std::to_string(size),
                     .inputs = {{size, size + 2, 32}},
                     .build =
                         [](Graph& g, const Ids& x) {
                             return g.conv2d("c", x[0],
                                             with_geometry(random_conv(32, 64, 2, 3), 2, 0),
                                             epilogue(Activation::LEAKY_RELU, 0.1f));
                         },
                     .cpu = kCpuConv,
                     .cuda = kCudaConv});
    }
    v.push_back({.name = "conv1x1 sigmoid 24->20",
                 .inputs = {{5, 6, 24}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.conv2d("c", x[0], random_conv(24, 20, 1, 4),
                                         epilogue(Activation::SIGMOID));
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv,
                 .input_scale = 3.0f});
}

void add_deconvolutions(std::vector<OpCase>& v) {
    v.push_back({.name = "deconv2x2 stride 2 64->64 lrelu",
                 .inputs = {{7, 9, 64}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.deconv2d("d", x[0], random_deconv(64, 64, 2, 2, 0, 5),
                                           epilogue(Activation::LEAKY_RELU, 0.1f));
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
    v.push_back({.name = "deconv4x4 stride 2 pad 3 64->3 (thin output)",
                 .inputs = {{8, 10, 64}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.deconv2d("d", x[0], random_deconv(64, 3, 4, 2, 3, 6), {});
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
    v.push_back({.name = "deconv5x5 stride 3 pad 2 32->3",
                 .inputs = {{6, 7, 32}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.deconv2d("d", x[0], random_deconv(32, 3, 5, 3, 2, 7), {});
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
    v.push_back({.name = "deconv3x3 stride 1 pad 1 3->20 sigmoid, no bias (thin input)",
                 .inputs = {{6, 5, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         ConvWeights w = random_deconv(3, 20, 3, 1, 1, 8);
                         w.bias = nullptr;
                         return g.deconv2d("d", x[0], w, epilogue(Activation::SIGMOID));
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
    v.push_back({.name = "deconv2x2 stride 2 of a channel view, relu",
                 .inputs = {{5, 6, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         const ValueId wide = conv_layer(g, x[0], 48, 3, 9);
                         return g.deconv2d("d", g.channels(wide, 16, 32),
                                           random_deconv(32, 16, 2, 2, 0, 10),
                                           epilogue(Activation::RELU));
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
}

void add_pool_mul_crop(std::vector<OpCase>& v) {
    for (const int c : {3, 20, 64}) {
        v.push_back({.name = "global avg pool c" + std::to_string(c),
                     .inputs = {{13, 11, c}},
                     .build = [](Graph& g, const Ids& x) { return g.global_avg_pool(x[0]); },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp,
                     .input_offset = 0.5f});
    }
    v.push_back(
        {.name = "global avg pool of a blocked padded buffer (21 ch)",
         .inputs = {{9, 7, 3}},
         .build = [](Graph& g,
                     const Ids& x) { return g.global_avg_pool(conv_layer(g, x[0], 21, 3, 11)); },
         .cpu = kCpuConv,
         .cuda = kCudaConv});
    for (const int c : {3, 64}) {
        v.push_back({.name = "mul broadcast [1, 1, c] c" + std::to_string(c),
                     .inputs = {{7, 9, c}, {1, 1, c}},
                     .build = [](Graph& g, const Ids& x) { return g.mul(x[0], x[1]); },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp});
        v.push_back({.name = "mul same shape c" + std::to_string(c),
                     .inputs = {{7, 9, c}, {7, 9, c}},
                     .build = [](Graph& g, const Ids& x) { return g.mul(x[0], x[1]); },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp});
    }
    v.push_back({.name = "mul of a blocked buffer by a thin-view broadcast",
                 .inputs = {{6, 5, 3}, {1, 1, 40}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.mul(conv_layer(g, x[0], 24, 3, 12), g.channels(x[1], 8, 24));
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
    v.push_back({.name = "crop 4 of a 13x15 c3 nhwc input",
                 .inputs = {{13, 15, 3}},
                 .build = [](Graph& g, const Ids& x) { return g.crop(x[0], 4, 4, 5, 7); },
                 .cpu = kCpuOp,
                 .cuda = kCudaOp});
    v.push_back(
        {.name = "crop (2, 5) of a blocked 64-ch buffer",
         .inputs = {{11, 12, 3}},
         .build = [](Graph& g,
                     const Ids& x) { return g.crop(conv_layer(g, x[0], 64, 3, 13), 2, 5, 7, 6); },
         .cpu = kCpuConv,
         .cuda = kCudaConv});
}

void add_blocks(std::vector<OpCase>& v) {
    v.push_back(
        {.name = "squeeze-excitation block c64",
         .inputs = {{10, 12, 64}},
         .build = [](Graph& g, const Ids& x) { return squeeze_excitation(g, x[0], 64, 14); },
         .cpu = kCpuConv,
         .cuda = widened(kCudaConv, 2, 1)});
    // CUNet's first level: conv, conv, 2x2 down, conv, conv, SE, 2x2 up, crop of the skip, add.
    v.push_back(
        {.name = "unet level: down, SE, up, crop, add",
         .inputs = {{20, 22, 3}},
         .build =
             [](Graph& g, const Ids& x) {
                 const auto lrelu = epilogue(Activation::LEAKY_RELU, 0.1f);
                 ValueId a =
                     g.conv2d("c1", x[0], with_geometry(random_conv(3, 16, 3, 15), 1, 0), lrelu);
                 ValueId skip =
                     g.conv2d("c2", a, with_geometry(random_conv(16, 32, 3, 16), 1, 0), lrelu);
                 ValueId d =
                     g.conv2d("down", skip, with_geometry(random_conv(32, 32, 2, 17), 2, 0), lrelu);
                 d = g.conv2d("c3", d, with_geometry(random_conv(32, 64, 3, 18), 1, 0), lrelu);
                 d = g.conv2d("c4", d, with_geometry(random_conv(64, 32, 3, 19), 1, 0), lrelu);
                 d = squeeze_excitation(g, d, 32, 20);
                 const ValueId up = g.deconv2d("up", d, random_deconv(32, 32, 2, 2, 0, 21), lrelu);
                 const engine::Value& u = g.value(up);
                 const int uh = u.h, uw = u.w;
                 return g.add(g.crop(skip, 4, 4, uh, uw), up);
             },
         .cpu = {1e-9, 1e-7, 1e-4},
         .cuda = widened(kCudaConv, 6, 2)});
}

}  // namespace

void add_unet_gan_cases(std::vector<OpCase>& v) {
    add_convolutions(v);
    add_deconvolutions(v);
    add_pool_mul_crop(v);
    add_blocks(v);
}

}  // namespace kiln::test
