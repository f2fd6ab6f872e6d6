// CONV2D: 3x3 and 1x1, with and without bias, every epilogue (ReLU fused, LeakyReLU, PReLU,
// SiLU, GELU, scaled residual adds), thin and odd channel counts (NHWC and planar layouts,
// scalar paths), stride 2 on even and odd sizes, linear layers on [L, 1, d] token sequences
// (cuBLASLt on the GPU), and dense blocks writing into channel slices of one buffer.
#include <string>

#include "tests/ops/case_families.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_builders.h"

namespace kiln::test {

using engine::Activation;
using engine::Epilogue;
using engine::Graph;
using engine::ValueId;

namespace {

void add_plain(std::vector<OpCase>& v) {
    v.push_back(
        {.name = "conv3x3 3->32 (nhwc in, blocked out)",
         .inputs = {{9, 11, 3}},
         .build = [](Graph& g,
                     const Ids& x) { return g.conv2d("c", x[0], random_conv(3, 32, 3, 1), {}); },
         .cpu = kCpuUpscale});
    v.push_back({.name = "conv3x3 32->32 lrelu",
                 .inputs = {{12, 10, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 32, 3, 2), {});
                         return g.conv2d("b", a, random_conv(32, 32, 3, 3),
                                         epilogue(Activation::LEAKY_RELU));
                     },
                 .cpu = kCpuUpscale});
    v.push_back({.name = "conv3x3 3->64 relu (fused)",
                 .inputs = {{16, 20, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.conv2d("c", x[0], random_conv(3, 64, 3, 1),
                                         epilogue(Activation::RELU));
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
    v.push_back({.name = "conv3x3 3->64->64 lrelu",
                 .inputs = {{12, 10, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 64, 3, 2), {});
                         return g.conv2d("b", a, random_conv(64, 64, 3, 3),
                                         epilogue(Activation::LEAKY_RELU));
                     },
                 .cpu = kCpuConv,
                 .cuda = widened(kCudaConv, 2, 1)});
    // Was a case of both suites before the table: one row now.
    v.push_back({.name = "conv3x3 odd channels 3->8->27 relu/none",
                 .inputs = {{7, 13, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 8, 3, 4),
                                           epilogue(Activation::RELU));
                         return g.conv2d("b", a, random_conv(8, 27, 3, 5), {});
                     },
                 .cpu = kCpuUpscale,
                 .cuda = widened(kCudaConv, 2, 1)});
    v.push_back({.name = "conv1x1 and no bias",
                 .inputs = {{6, 6, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 16, 1, 6, false), {});
                         return g.conv2d("b", a, random_conv(16, 3, 1, 7), {});
                     },
                 .cpu = kCpuUpscale});
    v.push_back({.name = "conv1x1 no bias",
                 .inputs = {{6, 6, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 16, 1, 6, false), {});
                         return g.conv2d("b", a, random_conv(16, 5, 1, 7, false), {});
                     },
                 .cpu = kCpuConv,
                 .cuda = widened(kCudaConv, 2, 1)});
    v.push_back({.name = "prelu",
                 .inputs = {{8, 8, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         Epilogue p;
                         p.act = Activation::PRELU;
                         p.prelu_slope = random_vector(16, 8, 0.5f);
                         auto a = g.conv2d("a", x[0], random_conv(3, 16, 3, 9), p);
                         return g.conv2d("b", a, random_conv(16, 3, 3, 10), {});
                     },
                 .cpu = kCpuUpscale});
    v.push_back({.name = "conv prelu",
                 .inputs = {{9, 9, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         Epilogue e = epilogue(Activation::PRELU);
                         e.prelu_slope = random_vector(24, 8, 0.5f);
                         return g.conv2d("p", x[0], random_conv(3, 24, 3, 9), e);
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
    v.push_back({.name = "conv residual adds (RRDB: y*0.2 + x, twice)",
                 .inputs = {{8, 8, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 32, 3, 10), {});
                         auto b = g.conv2d("b", a, random_conv(32, 32, 3, 11), {});
                         Epilogue e = epilogue(Activation::LEAKY_RELU);
                         e.adds.push_back({a, 0.2f});
                         e.adds.push_back({b, 0.5f});
                         return g.conv2d("c", b, random_conv(32, 32, 3, 12), e);
                     },
                 .cpu = kCpuConv,
                 .cuda = widened(kCudaConv, 3, 1)});
    for (const Activation act : {Activation::SILU, Activation::GELU}) {
        const std::string an = act == Activation::SILU ? "silu" : "gelu";
        v.push_back({.name = "conv3x3 epilogue " + an + " with residual",
                     .inputs = {{9, 10, 32}},
                     .build =
                         [act](Graph& g, const Ids& x) {
                             auto a = g.conv2d("a", x[0], random_conv(32, 32, 3, 5), epilogue(act));
                             Epilogue r = epilogue(act);
                             r.adds.push_back({a, 0.5f});
                             auto b = g.conv2d("b", a, random_conv(32, 32, 3, 6), r);
                             Epilogue r2 = epilogue(act);
                             r2.adds.push_back({a, 0.5f});
                             r2.adds.push_back({b, 0.25f});
                             return g.conv2d("c", b, random_conv(32, 32, 3, 7), r2);
                         },
                     .cpu = kCpuConv,
                     .input_scale = 2.0f});
        v.push_back({.name = "conv epilogue " + an,
                     .inputs = {{8, 8, 16}},
                     .build =
                         [act](Graph& g, const Ids& x) {
                             return g.conv2d("c", x[0], random_conv(16, 32, 3, 6), epilogue(act));
                         },
                     .cpu = kCpuConv,
                     .cuda = kCudaConv,
                     .seed = 100});
    }
}

// UNet downsamplers.
void add_strided(std::vector<OpCase>& v) {
    for (const Shape s : {Shape{9, 7, 16}, Shape{8, 10, 16}, Shape{1, 1, 16}, Shape{2, 3, 16}}) {
        v.push_back(
            {.name = "conv3x3 stride 2 on " + std::to_string(s.h) + "x" + std::to_string(s.w),
             .inputs = {s},
             .build =
                 [](Graph& g, const Ids& x) {
                     auto a = conv_layer(g, x[0], 24, 3, 1, 2);  // blocked -> blocked, padded
                     auto b = conv_layer(g, x[0], 5, 3, 2, 2);   // thin output
                     auto c = conv_layer(g, x[0], 16, 1, 3, 2);  // 1x1 stride 2
                     return g.concat(g.concat(a, b), c);
                 },
             .cpu = kCpuConv});
    }
    v.push_back({.name = "conv3x3 stride 2, thin planar input, odd size",
                 .inputs = {{11, 9, 3}},
                 .build = [](Graph& g, const Ids& x) { return conv_layer(g, x[0], 32, 3, 4, 2); },
                 .cpu = kCpuConv});
    v.push_back({.name = "conv3x3 stride 2 8x8",
                 .inputs = {{8, 8, 16}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto w = random_conv(16, 16, 3, 7);
                         w.stride = 2;
                         return g.conv2d("down", x[0], w, {});
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv,
                 .seed = 100});
    v.push_back({.name = "conv3x3 stride 2 9x7 odd",
                 .inputs = {{9, 7, 8}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto w = random_conv(8, 24, 3, 8);
                         w.stride = 2;
                         return g.conv2d("down", x[0], w, {});
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv,
                 .seed = 100});
}

// Linear layers (1x1 convolutions on [L, 1, c] token sequences): cuBLASLt with the bias fused,
// with the epilogue kernel after it, without bias, and on channel slices (odd leading
// dimensions: cuBLASLt's alignment preferences, or the cuDNN fallback).
void add_linear(std::vector<OpCase>& v) {
    v.push_back({.name = "linear 77x64 -> 128 bias",
                 .inputs = {{77, 1, 64}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         return g.conv2d("to_q", x[0], random_conv(64, 128, 1, 14), {});
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv,
                 .seed = 100});
    v.push_back({.name = "linear relu (fused) and gelu (epilogue)",
                 .inputs = {{33, 1, 40}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         Epilogue relu, gelu;
                         relu.act = Activation::RELU;
                         gelu.act = Activation::GELU;
                         auto a = g.conv2d("a", x[0], random_conv(40, 80, 1, 15), relu);
                         return g.conv2d("b", a, random_conv(80, 24, 1, 16), gelu);
                     },
                 .cpu = kCpuConv,
                 .cuda = widened(kCudaConv, 2, 1),
                 .seed = 100});
    v.push_back({.name = "linear no bias + residual",
                 .inputs = {{16, 1, 32}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         Epilogue e;
                         e.adds.push_back({x[0], 1.0f});
                         return g.conv2d("proj", x[0], random_conv(32, 32, 1, 17, false), e);
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv,
                 .seed = 100});
    v.push_back({.name = "linear on channel slices (odd offsets)",
                 .inputs = {{9, 1, 27}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto in = g.channels(x[0], 3, 21);
                         auto buf = g.buffer(9, 1, 37);
                         g.conv2d("l", in, random_conv(21, 13, 1, 18), {}, g.channels(buf, 5, 13));
                         return g.channels(buf, 5, 13);
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv,
                 .seed = 100});
}

// RRDB dense blocks: every convolution writes its channel slice of one buffer (no concat).
void add_dense(std::vector<OpCase>& v) {
    for (int nf : {32, 8}) {  // 32: blocked slices; 8: NHWC views with channel strides
        const int gc = nf / 2;
        v.push_back(
            {.name = "dense block nf=" + std::to_string(nf),
             .inputs = {{10, 9, 3}},
             .build =
                 [nf, gc](Graph& g, const Ids& x) {
                     const Epilogue lrelu = epilogue(Activation::LEAKY_RELU);
                     ValueId buf = g.buffer(10, 9, nf + 2 * gc);
                     ValueId in = g.conv2d("first", x[0], random_conv(3, nf, 3, 11), {},
                                           g.channels(buf, 0, nf));
                     g.conv2d("c1", g.channels(buf, 0, nf), random_conv(nf, gc, 3, 12), lrelu,
                              g.channels(buf, nf, gc));
                     g.conv2d("c2", g.channels(buf, 0, nf + gc), random_conv(nf + gc, gc, 3, 13),
                              lrelu, g.channels(buf, nf + gc, gc));
                     Epilogue res;
                     res.adds.push_back({in, 0.2f});
                     res.adds.push_back({in, 0.5f});
                     auto out = g.conv2d("c3", buf, random_conv(nf + 2 * gc, nf, 3, 14), res);
                     return g.conv2d("last", out, random_conv(nf, 3, 3, 15), {});
                 },
             .cpu = kCpuUpscale});
    }
    v.push_back({.name = "dense block: convs into channel slices of one buffer",
                 .inputs = {{10, 12, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto stem = g.conv2d("stem", x[0], random_conv(3, 64, 3, 13), {});
                         auto cat = g.buffer(10, 12, 64 + 3 * 32);
                         auto x0 = g.channels(cat, 0, 64);
                         g.conv2d("copy", stem, random_conv(64, 64, 1, 14), {}, x0);
                         for (int i = 0; i < 3; ++i) {
                             auto in = g.channels(cat, 0, 64 + i * 32);
                             auto out = g.channels(cat, 64 + i * 32, 32);
                             std::string name = "d";  // not "d" + ...: GCC 12 -Wrestrict
                             name += std::to_string(i);
                             g.conv2d(
                                 name, in,
                                 random_conv(64 + i * 32, 32, 3, 15 + static_cast<uint32_t>(i)),
                                 epilogue(Activation::LEAKY_RELU), out);
                         }
                         Epilogue e;
                         e.adds.push_back({stem, 0.2f});
                         return g.conv2d("fuse", cat, random_conv(160, 64, 3, 20), e);
                     },
                 .cpu = kCpuConv,
                 .cuda = widened(kCudaConv, 6, 2)});
}

}  // namespace

void add_conv_cases(std::vector<OpCase>& v) {
    add_plain(v);
    add_strided(v);
    add_linear(v);
    add_dense(v);
}

}  // namespace kiln::test
