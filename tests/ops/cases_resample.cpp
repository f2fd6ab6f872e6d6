// UPSAMPLE_NEAREST, UPSAMPLE_BILINEAR, RESIZE_BICUBIC, PIXEL_SHUFFLE and PIXEL_UNSHUFFLE: on
// 64 channels (128-bit paths on the GPU) and 3 (scalar paths), blocked and NHWC buffers on
// the CPU, integer factors 2..4, bicubic up and down to any size.
#include <string>

#include "tests/ops/case_families.h"
#include "tests/ops/graph_cases.h"

namespace kiln::test {

using engine::Graph;

namespace {

void add_upsample(std::vector<OpCase>& v) {
    v.push_back({.name = "upsample nearest x2 (blocked) and x3 (nhwc)",
                 .inputs = {{5, 7, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 16, 3, 16), {});
                         auto b = g.upsample_nearest(a, 2);
                         auto c = g.conv2d("b", b, random_conv(16, 5, 3, 17), {});
                         return g.upsample_nearest(c, 3);
                     },
                 .cpu = kCpuUpscale});
    v.push_back({.name = "upsample bilinear x2 (blocked, nhwc)",
                 .inputs = {{5, 6, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 16, 3, 18), {});
                         auto b = g.upsample_bilinear(a, 2);
                         return g.add(g.upsample_bilinear(x[0], 4),
                                      g.upsample_bilinear(
                                          g.conv2d("b", b, random_conv(16, 3, 3, 19), {}), 2),
                                      0.5f);
                     },
                 .cpu = kCpuUpscale});
    v.push_back({.name = "bicubic resize down 0.5, 0.75 and up (blocked, nhwc)",
                 .inputs = {{12, 16, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.conv2d("a", x[0], random_conv(3, 16, 3, 21), {});
                         auto b = g.resize_bicubic(a, 6, 8);  // x0.5, blocked
                         auto c = g.conv2d("b", b, random_conv(16, 3, 3, 22), {});
                         auto d = g.resize_bicubic(c, 9, 12);             // x1.5
                         return g.add(d, g.resize_bicubic(x[0], 9, 12));  // x0.75 of the input
                     },
                 .cpu = kCpuUpscale});
    for (int c : {3, 64}) {
        const std::string s = " c" + std::to_string(c);
        v.push_back({.name = "nearest x2" + s,
                     .inputs = {{7, 9, c}},
                     .build = [](Graph& g, const Ids& x) { return g.upsample_nearest(x[0], 2); },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp});
        v.push_back({.name = "bilinear x2" + s,
                     .inputs = {{7, 9, c}},
                     .build = [](Graph& g, const Ids& x) { return g.upsample_bilinear(x[0], 2); },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp});
        v.push_back({.name = "bilinear x3" + s,
                     .inputs = {{5, 4, c}},
                     .build = [](Graph& g, const Ids& x) { return g.upsample_bilinear(x[0], 3); },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp});
        v.push_back({.name = "bicubic 7x9 -> 17x5" + s,
                     .inputs = {{7, 9, c}},
                     .build = [](Graph& g, const Ids& x) { return g.resize_bicubic(x[0], 17, 5); },
                     .cpu = kCpuOp,
                     .cuda = kCudaOp});
    }
}

void add_shuffle(std::vector<OpCase>& v) {
    v.push_back({.name = "pixel shuffle/unshuffle round trip",
                 .inputs = {{8, 12, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto a = g.pixel_unshuffle(x[0], 2);  // 12 channels
                         auto b = g.conv2d("a", a, random_conv(12, 48, 3, 20), {});
                         auto c = g.pixel_shuffle(b, 4);  // 3 channels, x2 size
                         return g.add(c, g.upsample_nearest(x[0], 2));
                     },
                 .cpu = kCpuUpscale});
    v.push_back({.name = "pixel shuffle r2",
                 .inputs = {{5, 6, 12}},
                 .build = [](Graph& g, const Ids& x) { return g.pixel_shuffle(x[0], 2); },
                 .cpu = kCpuOp,
                 .cuda = kCudaOp});
    v.push_back({.name = "pixel shuffle r3",
                 .inputs = {{4, 3, 27}},
                 .build = [](Graph& g, const Ids& x) { return g.pixel_shuffle(x[0], 3); },
                 .cpu = kCpuOp,
                 .cuda = kCudaOp});
    v.push_back({.name = "pixel unshuffle r2",
                 .inputs = {{6, 8, 3}},
                 .build = [](Graph& g, const Ids& x) { return g.pixel_unshuffle(x[0], 2); },
                 .cpu = kCpuOp,
                 .cuda = kCudaOp});
    v.push_back({.name = "unshuffle -> conv -> shuffle (Real-ESRGAN x2 front/back)",
                 .inputs = {{8, 8, 3}},
                 .build =
                     [](Graph& g, const Ids& x) {
                         auto u = g.pixel_unshuffle(x[0], 2);
                         auto c = g.conv2d("c", u, random_conv(12, 12, 3, 21), {});
                         return g.pixel_shuffle(c, 2);
                     },
                 .cpu = kCpuConv,
                 .cuda = kCudaConv});
}

}  // namespace

void add_resample_cases(std::vector<OpCase>& v) {
    add_upsample(v);
    add_shuffle(v);
}

}  // namespace kiln::test
