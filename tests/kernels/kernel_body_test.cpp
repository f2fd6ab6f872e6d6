// The kernels' per-element code (kernels/*_body.h) run on the CPU through the same walk the
// GPU does (vector chunks, scalar tails, per-pixel rows for channel slices): results against
// naive references, and nothing outside the destination view is written. Only the fp16
// load/store intrinsics differ on the GPU (same rounding: nearest even).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/activation_body.h"
#include "kernels/elementwise_body.h"
#include "kernels/pool_body.h"
#include "kernels/resample_body.h"

namespace kiln::kernels {
namespace {

constexpr uint16_t kSentinel = 0x7e00;  // a NaN no op produces from finite inputs

// An fp16 NHWC buffer of h x w x c_total, 16-byte aligned, random values in [-1, 1].
struct HostBuffer {
    std::vector<uint16_t> storage;
    uint16_t* data = nullptr;
    int h, w, c_total;

    HostBuffer(int h_, int w_, int c_, uint32_t seed) : h(h_), w(w_), c_total(c_) {
        const size_t n = static_cast<size_t>(h) * w * c_total;
        storage.assign(n + 8, kSentinel);
        auto addr = reinterpret_cast<uintptr_t>(storage.data());
        data = storage.data() + ((16 - addr % 16) % 16) / 2;
        std::mt19937 rng(seed);
        std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
        for (size_t i = 0; i < n; ++i)
            data[i] = core::float_to_half(dist(rng));
    }
    // A copy owns its values (data points into its own storage).
    HostBuffer(const HostBuffer& o)
        : storage(o.storage),
          data(storage.data() + (o.data - o.storage.data())),
          h(o.h),
          w(o.w),
          c_total(o.c_total) {}
    HostBuffer& operator=(const HostBuffer&) = delete;

    DeviceView view(int c, int c_offset) { return {data, {h, w, c, c_total, c_offset}}; }
    size_t size() const { return static_cast<size_t>(h) * w * c_total; }
    float at(const DeviceView& v, int y, int x, int ch) const {
        return core::half_to_float(data[v.desc.offset(y, x, ch)]);
    }
};

bool in_view(const ViewDesc& v, size_t i) {
    const int ch = static_cast<int>(i % static_cast<size_t>(v.c_total));
    return ch >= v.c_offset && ch < v.c_offset + v.c;
}

struct Layout {
    const char* name;
    int c, c_total, c_offset;
    int expect_vec;
};

// Packed (flat; 8-wide with a scalar tail when h*w*c % 8 != 0), aligned slice (8-wide per
// pixel), misaligned slice and odd widths (scalar).
const Layout kLayouts[] = {
    {"packed c16", 16, 16, 0, 8},          {"packed c3 (tail)", 3, 3, 0, 8},
    {"slice 16 of 48 @16", 16, 48, 16, 8}, {"slice 16 of 48 @4", 16, 48, 4, 1},
    {"slice 5 of 9 @3", 5, 9, 3, 1},
};

TEST(KernelBody, EpilogueMatchesReferenceOnEveryLayout) {
    const int h = 5, w = 7;
    for (const Layout& l : kLayouts) {
        for (const Act act : {Act::NONE, Act::RELU, Act::LEAKY_RELU, Act::PRELU}) {
            for (const bool in_place : {false, true}) {
                HostBuffer src(h, w, l.c_total, 1), dst(h, w, l.c_total, 2);
                HostBuffer r0(h, w, l.c_total, 3), r1(h, w, l.c, 4);
                std::vector<float> bias(static_cast<size_t>(l.c)), slope(bias.size());
                for (size_t i = 0; i < bias.size(); ++i) {
                    bias[i] = 0.01f * static_cast<float>(i) - 0.05f;
                    slope[i] = 0.1f + 0.02f * static_cast<float>(i);
                }
                const DeviceView sv = src.view(l.c, l.c_offset);
                const DeviceView dv = in_place ? sv : dst.view(l.c, l.c_offset);
                HostBuffer& out = in_place ? src : dst;
                const std::vector<uint16_t> before = out.storage;
                const HostBuffer src_copy = src;
                EpilogueArgs args;
                args.bias = bias.data();
                args.act = act;
                args.alpha = 0.2f;
                args.prelu_slope = slope.data();
                args.num_adds = 2;
                args.residual[0] = r0.view(l.c, l.c_offset);
                args.residual[1] = r1.view(l.c, 0);  // packed residual beside sliced views
                args.scale[0] = 0.2f;
                args.scale[1] = 0.5f;
                const EpilogueParams p = make_epilogue_params(sv, dv, args);
                if (l.c_total != l.c) {
                    EXPECT_EQ(p.plan.vec, l.expect_vec) << l.name;
                }
                epilogue_host(p);
                for (int y = 0; y < h; ++y)
                    for (int x = 0; x < w; ++x)
                        for (int ch = 0; ch < l.c; ++ch) {
                            const float s =
                                act == Act::PRELU ? slope[static_cast<size_t>(ch)] : 0.2f;
                            float v = src_copy.at(sv, y, x, ch) + bias[static_cast<size_t>(ch)];
                            v = act == Act::NONE   ? v
                                : act == Act::RELU ? std::max(v, 0.0f)
                                : v > 0.0f         ? v
                                                   : v * s;
                            v = v * 0.2f + r0.at(args.residual[0], y, x, ch);
                            v = v * 0.5f + r1.at(args.residual[1], y, x, ch);
                            ASSERT_EQ(out.data[dv.desc.offset(y, x, ch)], core::float_to_half(v))
                                << l.name << " act " << static_cast<int>(act) << " " << y << ","
                                << x << "," << ch;
                        }
                for (size_t i = 0; i < out.storage.size(); ++i) {
                    const auto* base = out.storage.data();
                    const auto off = static_cast<size_t>(out.data - base);
                    if (i >= off && i < off + out.size() && in_view(dv.desc, i - off))
                        continue;
                    ASSERT_EQ(out.storage[i], before[i]) << l.name << " wrote outside at " << i;
                }
            }
        }
    }
}

TEST(KernelBody, AddAndCopyMatchReferenceOnEveryLayout) {
    const int h = 3, w = 11;
    for (const Layout& l : kLayouts) {
        HostBuffer a(h, w, l.c_total, 5), b(h, w, l.c, 6), d(h, w, l.c_total, 7);
        const DeviceView av = a.view(l.c, l.c_offset), bv = b.view(l.c, 0),
                         dv = d.view(l.c, l.c_offset);
        const std::vector<uint16_t> before = d.storage;
        add_host<true>(make_add_params(av, bv, dv, 0.25f));
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int ch = 0; ch < l.c; ++ch)
                    ASSERT_EQ(d.data[dv.desc.offset(y, x, ch)],
                              core::float_to_half(a.at(av, y, x, ch) * 0.25f + b.at(bv, y, x, ch)))
                        << l.name;
        for (size_t i = 0; i < d.size(); ++i) {
            if (!in_view(dv.desc, i)) {
                ASSERT_EQ(d.data[i], before[static_cast<size_t>(d.data - d.storage.data()) + i]);
            }
        }
        HostBuffer e(h, w, l.c_total, 8);
        const DeviceView ev = e.view(l.c, l.c_offset);
        add_host<false>(make_add_params(av, {}, ev, 1.0f));
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int ch = 0; ch < l.c; ++ch)
                    ASSERT_EQ(e.data[ev.desc.offset(y, x, ch)], a.data[av.desc.offset(y, x, ch)]);
    }
}

TEST(KernelBody, BroadcastAddMatchesReferenceOnEveryLayout) {
    const int h = 3, w = 11;
    for (const Layout& l : kLayouts) {
        // b: [1, 1, c] (a timestep embedding added to every pixel), as a slice of its buffer.
        HostBuffer a(h, w, l.c_total, 15), b(1, 1, l.c_total, 16), d(h, w, l.c_total, 17);
        const DeviceView av = a.view(l.c, l.c_offset), bv = b.view(l.c, l.c_offset),
                         dv = d.view(l.c, l.c_offset);
        const std::vector<uint16_t> before = d.storage;
        const AddParams p = make_add_params(av, bv, dv, 0.5f);
        EXPECT_TRUE(p.b_broadcast);
        EXPECT_EQ(p.plan.rows, static_cast<int64_t>(h) * w) << l.name;  // rows are forced
        EXPECT_EQ(p.plan.vec, l.c % 8 == 0 && l.c_offset % 8 == 0 && l.c_total % 8 == 0 ? 8 : 1)
            << l.name;
        add_host<true>(p);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int ch = 0; ch < l.c; ++ch)
                    ASSERT_EQ(d.data[dv.desc.offset(y, x, ch)],
                              core::float_to_half(a.at(av, y, x, ch) * 0.5f + b.at(bv, 0, 0, ch)))
                        << l.name;
        for (size_t i = 0; i < d.size(); ++i) {
            if (!in_view(dv.desc, i)) {
                ASSERT_EQ(d.data[i], before[static_cast<size_t>(d.data - d.storage.data()) + i]);
            }
        }
    }
}

TEST(KernelBody, GegluMatchesReferenceOnEveryLayout) {
    const int h = 4, w = 5;
    // x holds 2c channels inside a buffer of x_total; dst c channels of d_total.
    struct GegluLayout {
        const char* name;
        int c, x_total, x_offset, d_total, d_offset;
    };
    const GegluLayout layouts[] = {{"packed c16", 16, 32, 0, 16, 0},
                                   {"packed c3", 3, 6, 0, 3, 0},
                                   {"slices c8", 8, 40, 8, 24, 16},
                                   {"odd c5", 5, 13, 1, 7, 2}};
    for (const GegluLayout& l : layouts) {
        HostBuffer x(h, w, l.x_total, 21), d(h, w, l.d_total, 22);
        const DeviceView xv = x.view(2 * l.c, l.x_offset), dv = d.view(l.c, l.d_offset);
        const std::vector<uint16_t> before = d.storage;
        geglu_host(make_geglu_params(xv, dv));
        for (int y = 0; y < h; ++y)
            for (int xx = 0; xx < w; ++xx)
                for (int ch = 0; ch < l.c; ++ch) {
                    const double a = x.at(xv, y, xx, ch), g = x.at(xv, y, xx, ch + l.c);
                    const double want = a * 0.5 * g * (1.0 + std::erf(g / std::sqrt(2.0)));
                    ASSERT_NEAR(core::half_to_float(d.data[dv.desc.offset(y, xx, ch)]), want,
                                std::abs(want) * 1e-3 + 1e-6)
                        << l.name;
                }
        for (size_t i = 0; i < d.size(); ++i) {
            if (!in_view(dv.desc, i)) {
                ASSERT_EQ(d.data[i], before[static_cast<size_t>(d.data - d.storage.data()) + i]);
            }
        }
    }
}

TEST(KernelBody, EpilogueSiluGeluAndSigmoid) {
    HostBuffer src(2, 3, 8, 31), dst(2, 3, 8, 32);
    for (const Act act : {Act::SILU, Act::GELU, Act::SIGMOID}) {
        EpilogueArgs args;
        args.act = act;
        epilogue_host(make_epilogue_params(src.view(8, 0), dst.view(8, 0), args));
        for (size_t i = 0; i < src.size(); ++i) {
            const double x = core::half_to_float(src.data[i]);
            const double want = act == Act::SILU   ? x / (1.0 + std::exp(-x))
                                : act == Act::GELU ? 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)))
                                                   : 1.0 / (1.0 + std::exp(-x));
            ASSERT_NEAR(core::half_to_float(dst.data[i]), want, std::abs(want) * 1e-3 + 1e-6);
        }
    }
}

// A squeeze-excitation gate: bias + sigmoid on a [1, 1, c] slice (one pixel: a flat run
// with a scalar tail when packed, else one row).
TEST(KernelBody, EpilogueSigmoidOnOnePixel) {
    for (const Layout& l : kLayouts) {
        HostBuffer src(1, 1, l.c_total, 33), dst(1, 1, l.c_total, 34);
        std::vector<float> bias(static_cast<size_t>(l.c));
        for (size_t i = 0; i < bias.size(); ++i)
            bias[i] = 4.0f * static_cast<float>(i) - 8.0f;  // saturates both ends
        const DeviceView sv = src.view(l.c, l.c_offset), dv = dst.view(l.c, l.c_offset);
        const std::vector<uint16_t> before = dst.storage;
        EpilogueArgs args;
        args.bias = bias.data();
        args.act = Act::SIGMOID;
        epilogue_host(make_epilogue_params(sv, dv, args));
        for (int ch = 0; ch < l.c; ++ch) {
            const double x = src.at(sv, 0, 0, ch) + bias[static_cast<size_t>(ch)];
            const double want = 1.0 / (1.0 + std::exp(-x));
            ASSERT_NEAR(dst.at(dv, 0, 0, ch), want, want * 1e-3 + 1e-7) << l.name << " " << ch;
        }
        for (size_t i = 0; i < dst.size(); ++i) {
            if (!in_view(dv.desc, i)) {
                ASSERT_EQ(dst.data[i],
                          before[static_cast<size_t>(dst.data - dst.storage.data()) + i]);
            }
        }
    }
}

TEST(KernelBody, MulMatchesReferenceOnEveryLayoutAndBroadcast) {
    const int h = 3, w = 11;
    for (const Layout& l : kLayouts) {
        for (const bool broadcast : {false, true}) {
            // b: a's shape, or [1, 1, c] (a squeeze-excitation gate) as a slice of its buffer.
            HostBuffer a(h, w, l.c_total, 41),
                b(broadcast ? 1 : h, broadcast ? 1 : w, l.c_total, 42), d(h, w, l.c_total, 43);
            const DeviceView av = a.view(l.c, l.c_offset), bv = b.view(l.c, l.c_offset),
                             dv = d.view(l.c, l.c_offset);
            const std::vector<uint16_t> before = d.storage;
            const AddParams p = make_add_params(av, bv, dv, 1.0f);
            EXPECT_EQ(p.b_broadcast, broadcast);
            if (l.c_total != l.c || broadcast) {
                EXPECT_EQ(p.plan.vec,
                          l.c % 8 == 0 && l.c_offset % 8 == 0 && l.c_total % 8 == 0 ? 8 : 1)
                    << l.name;
            }
            mul_host(p);
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x)
                    for (int ch = 0; ch < l.c; ++ch) {
                        const float vb = broadcast ? b.at(bv, 0, 0, ch) : b.at(bv, y, x, ch);
                        ASSERT_EQ(d.data[dv.desc.offset(y, x, ch)],
                                  core::float_to_half(a.at(av, y, x, ch) * vb))
                            << l.name << " broadcast " << broadcast;
                    }
            for (size_t i = 0; i < d.size(); ++i) {
                if (!in_view(dv.desc, i)) {
                    ASSERT_EQ(d.data[i],
                              before[static_cast<size_t>(d.data - d.storage.data()) + i]);
                }
            }
        }
    }
}

TEST(KernelBody, CropCopiesTheWindowOnEveryLayout) {
    const int h = 9, w = 13;
    struct Window {
        int top, left, h, w;
    };
    for (const Layout& l : kLayouts) {
        for (const Window win :
             {Window{0, 0, 9, 13}, Window{4, 4, 1, 5}, Window{2, 5, 7, 6}, Window{8, 12, 1, 1}}) {
            // Source and destination are both slices of their buffers (same layout).
            HostBuffer s(h, w, l.c_total, 51), d(win.h, win.w, l.c_total, 52);
            const DeviceView sv = s.view(l.c, l.c_offset), dv = d.view(l.c, l.c_offset);
            const std::vector<uint16_t> before = d.storage;
            const CropParams p = make_crop_params(sv, dv, win.top, win.left);
            EXPECT_EQ(p.plan.rows, static_cast<int64_t>(win.h) * win.w);  // never flat
            EXPECT_EQ(p.plan.tail, 0);
            EXPECT_EQ(p.plan.vec, l.c % 8 == 0 && l.c_offset % 8 == 0 && l.c_total % 8 == 0 ? 8 : 1)
                << l.name;
            crop_host(p);
            for (int y = 0; y < win.h; ++y)
                for (int x = 0; x < win.w; ++x)
                    for (int ch = 0; ch < l.c; ++ch)
                        ASSERT_EQ(d.data[dv.desc.offset(y, x, ch)],
                                  s.data[sv.desc.offset(win.top + y, win.left + x, ch)])
                            << l.name << " " << y << "," << x << "," << ch;
            for (size_t i = 0; i < d.size(); ++i) {
                if (!in_view(dv.desc, i)) {
                    ASSERT_EQ(d.data[i],
                              before[static_cast<size_t>(d.data - d.storage.data()) + i]);
                }
            }
        }
    }
    // A packed source cropped into a channel slice of a wider buffer (CUNet's skip + concat).
    HostBuffer s(6, 7, 16, 53), d(3, 4, 48, 54);
    const DeviceView sv = s.view(16, 0), dv = d.view(16, 32);
    const CropParams p = make_crop_params(sv, dv, 2, 1);
    EXPECT_EQ(p.plan.vec, 8);
    crop_host(p);
    for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 4; ++x)
            for (int ch = 0; ch < 16; ++ch)
                ASSERT_EQ(d.data[dv.desc.offset(y, x, ch)],
                          s.data[sv.desc.offset(y + 2, x + 1, ch)]);
}

// Naive references in double (PyTorch's definitions).
double ref_bilinear(const HostBuffer& s, const DeviceView& v, int f, int y, int x, int ch) {
    auto src = [&](int d, int n) { return std::max((d + 0.5) / f - 0.5, 0.0) + 0 * n; };
    const double fy = src(y, v.desc.h), fx = src(x, v.desc.w);
    const int y0 = std::min(static_cast<int>(fy), v.desc.h - 1);
    const int x0 = std::min(static_cast<int>(fx), v.desc.w - 1);
    const int y1 = std::min(y0 + 1, v.desc.h - 1), x1 = std::min(x0 + 1, v.desc.w - 1);
    const double wy = fy - y0, wx = fx - x0;
    return (s.at(v, y0, x0, ch) * (1 - wx) + s.at(v, y0, x1, ch) * wx) * (1 - wy) +
           (s.at(v, y1, x0, ch) * (1 - wx) + s.at(v, y1, x1, ch) * wx) * wy;
}

double keys(double t) {
    const double a = -0.75;
    t = std::abs(t);
    if (t <= 1)
        return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2)
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
    return 0;
}

double ref_bicubic(const HostBuffer& s, const DeviceView& v, int oh, int ow, int y, int x, int ch) {
    const double fy = (y + 0.5) * v.desc.h / oh - 0.5, fx = (x + 0.5) * v.desc.w / ow - 0.5;
    const int by = static_cast<int>(std::floor(fy)), bx = static_cast<int>(std::floor(fx));
    double acc = 0;
    for (int i = -1; i <= 2; ++i)
        for (int j = -1; j <= 2; ++j) {
            const int sy = std::clamp(by + i, 0, v.desc.h - 1);
            const int sx = std::clamp(bx + j, 0, v.desc.w - 1);
            acc += keys(fy - (by + i)) * keys(fx - (bx + j)) * s.at(v, sy, sx, ch);
        }
    return acc;
}

TEST(KernelBody, ResamplingMatchesReferencesVectorAndScalar) {
    struct Io {
        int c, c_total, c_offset;
        bool vec;
    };
    for (const Io io :
         {Io{16, 16, 0, true}, Io{16, 32, 16, true}, Io{16, 24, 4, false}, Io{3, 3, 0, false}}) {
        const int h = 5, w = 6;
        HostBuffer s(h, w, io.c_total, 9);
        const DeviceView sv = s.view(io.c, io.c_offset);
        for (int f : {2, 3}) {
            HostBuffer dn(h * f, w * f, io.c_total, 10), db(h * f, w * f, io.c_total, 11);
            const DeviceView dnv = dn.view(io.c, io.c_offset), dbv = db.view(io.c, io.c_offset);
            EXPECT_EQ(resample_vectorized<ResampleMode::NEAREST>(sv, dnv), io.vec);
            resample_host<ResampleMode::NEAREST>(sv, dnv, f);
            resample_host<ResampleMode::BILINEAR>(sv, dbv, f);
            for (int y = 0; y < h * f; ++y)
                for (int x = 0; x < w * f; ++x)
                    for (int ch = 0; ch < io.c; ++ch) {
                        ASSERT_EQ(dn.at(dnv, y, x, ch), s.at(sv, y / f, x / f, ch));
                        ASSERT_NEAR(db.at(dbv, y, x, ch), ref_bilinear(s, sv, f, y, x, ch), 1e-3);
                    }
        }
        const int oh = 13, ow = 4;
        HostBuffer dc(oh, ow, io.c_total, 12);
        const DeviceView dcv = dc.view(io.c, io.c_offset);
        const std::vector<uint16_t> before = dc.storage;
        resample_host<ResampleMode::BICUBIC>(sv, dcv, 1);
        for (int y = 0; y < oh; ++y)
            for (int x = 0; x < ow; ++x)
                for (int ch = 0; ch < io.c; ++ch)
                    ASSERT_NEAR(dc.at(dcv, y, x, ch), ref_bicubic(s, sv, oh, ow, y, x, ch), 2e-3);
        for (size_t i = 0; i < dc.size(); ++i) {
            if (!in_view(dcv.desc, i)) {
                ASSERT_EQ(dc.data[i], before[static_cast<size_t>(dc.data - dc.storage.data()) + i]);
            }
        }
    }
}

// RESIZE_BILINEAR: any output size (down and up, per axis), against PyTorch's definition in
// double, on packed, aligned-slice and scalar layouts; nothing outside the view written.
double ref_resize_bilinear(const HostBuffer& s,
                           const DeviceView& v,
                           int oh,
                           int ow,
                           int y,
                           int x,
                           int ch) {
    const auto src = [](int d, int in, int out) {
        return std::max((d + 0.5) * in / out - 0.5, 0.0);
    };
    const double fy = src(y, v.desc.h, oh), fx = src(x, v.desc.w, ow);
    const int y0 = std::min(static_cast<int>(fy), v.desc.h - 1);
    const int x0 = std::min(static_cast<int>(fx), v.desc.w - 1);
    const int y1 = std::min(y0 + 1, v.desc.h - 1), x1 = std::min(x0 + 1, v.desc.w - 1);
    const double wy = fy - y0, wx = fx - x0;
    return (s.at(v, y0, x0, ch) * (1 - wx) + s.at(v, y0, x1, ch) * wx) * (1 - wy) +
           (s.at(v, y1, x0, ch) * (1 - wx) + s.at(v, y1, x1, ch) * wx) * wy;
}

TEST(KernelBody, ResizeBilinearMatchesPyTorchDownAndUp) {
    struct Io {
        int c, c_total, c_offset;
        bool vec;
    };
    struct Size {
        int ih, iw, oh, ow;
    };
    for (const Io io :
         {Io{16, 16, 0, true}, Io{16, 32, 16, true}, Io{16, 24, 4, false}, Io{5, 5, 0, false}}) {
        for (const Size sz : {Size{3, 4, 23, 29}, Size{13, 11, 6, 17}, Size{24, 20, 24, 20},
                              Size{1, 1, 3, 2}, Size{17, 9, 1, 1}}) {
            HostBuffer s(sz.ih, sz.iw, io.c_total, 61), d(sz.oh, sz.ow, io.c_total, 62);
            const DeviceView sv = s.view(io.c, io.c_offset), dv = d.view(io.c, io.c_offset);
            EXPECT_EQ(resample_vectorized<ResampleMode::RESIZE_BILINEAR>(sv, dv), io.vec);
            const std::vector<uint16_t> before = d.storage;
            resample_host<ResampleMode::RESIZE_BILINEAR>(sv, dv, 1);
            for (int y = 0; y < sz.oh; ++y)
                for (int x = 0; x < sz.ow; ++x)
                    for (int ch = 0; ch < io.c; ++ch) {
                        const double ref = ref_resize_bilinear(s, sv, sz.oh, sz.ow, y, x, ch);
                        // fp16 rounding of the result (2^-11 relative) and fp32 weights.
                        ASSERT_NEAR(d.at(dv, y, x, ch), ref, std::abs(ref) * 1e-3 + 1e-5)
                            << sz.ih << "x" << sz.iw << " -> " << sz.oh << "x" << sz.ow << " at "
                            << y << "," << x << "," << ch;
                    }
            for (size_t i = 0; i < d.size(); ++i) {
                if (!in_view(dv.desc, i)) {
                    ASSERT_EQ(d.data[i],
                              before[static_cast<size_t>(d.data - d.storage.data()) + i]);
                }
            }
        }
        // Same size: the identity, exactly (weights 0, taps on the pixel).
        HostBuffer s(7, 9, io.c_total, 63), d(7, 9, io.c_total, 64);
        const DeviceView sv = s.view(io.c, io.c_offset), dv = d.view(io.c, io.c_offset);
        resample_host<ResampleMode::RESIZE_BILINEAR>(sv, dv, 1);
        for (int y = 0; y < 7; ++y)
            for (int x = 0; x < 9; ++x)
                for (int ch = 0; ch < io.c; ++ch)
                    ASSERT_EQ(d.data[dv.desc.offset(y, x, ch)], s.data[sv.desc.offset(y, x, ch)]);
    }
}

// MAX_POOL: every window's maximum, exactly (a maximum of fp16 values is one of them), on
// every layout, 8-wide where both views allow it; nothing outside the view written.
TEST(KernelBody, MaxPoolTakesEachWindowsMaximumOnEveryLayout) {
    struct Pool {
        int h, w, k, s;
    };
    for (const Layout& l : kLayouts) {
        for (const Pool pool : {Pool{23, 29, 7, 3}, Pool{12, 9, 3, 2}, Pool{7, 7, 7, 3},
                                Pool{5, 8, 1, 1}, Pool{10, 11, 2, 4}}) {
            const int oh = max_pool_output_size(pool.h, pool.k, pool.s);
            const int ow = max_pool_output_size(pool.w, pool.k, pool.s);
            ASSERT_EQ(oh, static_cast<int>(std::floor((pool.h - pool.k) / double(pool.s))) + 1);
            HostBuffer s(pool.h, pool.w, l.c_total, 71), d(oh, ow, l.c_total, 72);
            const DeviceView sv = s.view(l.c, l.c_offset), dv = d.view(l.c, l.c_offset);
            const bool vec = l.c % 8 == 0 && l.c_offset % 8 == 0 && l.c_total % 8 == 0;
            EXPECT_EQ(max_pool_vectorized(sv, dv), vec) << l.name;
            const std::vector<uint16_t> before = d.storage;
            max_pool_host(sv, dv, pool.k, pool.s);
            for (int y = 0; y < oh; ++y)
                for (int x = 0; x < ow; ++x)
                    for (int ch = 0; ch < l.c; ++ch) {
                        float m = -INFINITY;
                        for (int i = 0; i < pool.k; ++i)
                            for (int j = 0; j < pool.k; ++j)
                                m = std::max(m, s.at(sv, y * pool.s + i, x * pool.s + j, ch));
                        ASSERT_EQ(d.at(dv, y, x, ch), m) << l.name << " " << y << "," << x;
                    }
            for (size_t i = 0; i < d.size(); ++i) {
                if (!in_view(dv.desc, i)) {
                    ASSERT_EQ(d.data[i],
                              before[static_cast<size_t>(d.data - d.storage.data()) + i]);
                }
            }
        }
    }
    // Negative inputs only: the maximum is not clamped at 0.
    HostBuffer s(3, 3, 8, 73), d(1, 1, 8, 74);
    for (size_t i = 0; i < s.size(); ++i)
        s.data[i] = core::float_to_half(-1.0f - static_cast<float>(i));
    max_pool_host(s.view(8, 0), d.view(8, 0), 3, 3);
    for (int ch = 0; ch < 8; ++ch)
        EXPECT_EQ(core::half_to_float(d.data[ch]), -1.0f - static_cast<float>(ch));
}

TEST(KernelBody, ShuffleThenUnshuffleIsIdentityThroughSlices) {
    const int h = 3, w = 4, r = 2, c = 3;
    HostBuffer s(h, w, 20, 13);  // 12 = c*r*r channels at offset 5 of 20
    const DeviceView sv = s.view(c * r * r, 5);
    HostBuffer mid(h * r, w * r, 7, 14);  // 3 channels at offset 2 of 7
    const DeviceView mv = mid.view(c, 2);
    resample_host<ResampleMode::SHUFFLE>(sv, mv, r);
    for (int y = 0; y < h * r; ++y)
        for (int x = 0; x < w * r; ++x)
            for (int ch = 0; ch < c; ++ch)
                ASSERT_EQ(mid.at(mv, y, x, ch),
                          s.at(sv, y / r, x / r, ch * r * r + (y % r) * r + x % r));
    HostBuffer back(h, w, 12, 15);
    const DeviceView bv = back.view(12, 0);
    resample_host<ResampleMode::UNSHUFFLE>(mv, bv, r);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int ch = 0; ch < 12; ++ch)
                ASSERT_EQ(back.at(bv, y, x, ch), s.at(sv, y, x, ch));
}

}  // namespace
}  // namespace kiln::kernels
