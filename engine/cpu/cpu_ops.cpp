#include "engine/cpu/cpu_ops.h"

#include <algorithm>
#include <cmath>

#include "engine/cpu/cpu_math.h"
#include "kernels/resample_math.h"

namespace kiln::engine::cpu {

namespace {

// A view whose floats form one contiguous run that can be walked as [groups][pixels][width]:
// a block-aligned view of a blocked buffer, or a whole NHWC buffer (one group).
bool is_contiguous(const ViewLayout& l) {
    return l.blocked() || (!l.planar && l.c_offset == 0 && l.c_total == l.c);
}

bool same_walk(const ViewLayout& a, const ViewLayout& b) {
    return a.h == b.h && a.w == b.w && a.c == b.c && a.block == b.block && is_contiguous(a) &&
           is_contiguous(b);
}

int group_width(const ViewLayout& l) {
    return l.blocked() ? l.block : l.c;
}

// Floats of a contiguous view, padding included.
int64_t walk_length(const ViewLayout& l) {
    return l.pixels() * l.padded_c();
}

// Element access through a precomputed per-channel offset table: no division by the block
// size in inner loops.
struct ViewIndex {
    float* base;
    int64_t pixel_stride;
    int w;
    const int64_t* coff;

    explicit ViewIndex(const CpuView& v)
        : base(v.buffer), pixel_stride(v.layout.pixel_stride()), w(v.layout.w), coff(v.coff) {}
    float& operator()(int y, int x, int ch) const {
        return base[(int64_t{y} * w + x) * pixel_stride + coff[ch]];
    }
};

}  // namespace

void zero_padding(const CpuView& v, int threads) {
    const ViewLayout& l = v.layout;
    if (!l.has_padding())
        return;
    const int64_t pixels = l.pixels();
    float* block =
        v.buffer + l.base_offset() + int64_t{l.padded_c() / l.block - 1} * pixels * l.block;
    const int first = l.c % l.block;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < pixels; ++p) {
        for (int k = first; k < l.block; ++k)
            block[p * l.block + k] = 0.0f;
    }
}

namespace {

float activate(float v, Activation act, float alpha, float slope) {
    switch (act) {
        case Activation::NONE:
            return v;
        case Activation::RELU:
            return v > 0.0f ? v : 0.0f;
        case Activation::LEAKY_RELU:
            return v > 0.0f ? v : v * alpha;
        case Activation::PRELU:
            return v > 0.0f ? v : v * slope;
        case Activation::SILU:
            return v / (1.0f + std::exp(-v));
        case Activation::GELU:
            return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
        case Activation::SIGMOID:
            return 1.0f / (1.0f + std::exp(-v));
    }
    return v;
}

}  // namespace

void op_copy_in(const float* nhwc, const CpuView& dst, int threads) {
    const ViewLayout& l = dst.layout;
    const int64_t* coff = dst.coff;
    const int64_t pixels = l.pixels();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < pixels; ++p) {
        float* out = dst.buffer + p * l.pixel_stride();
        const float* in = nhwc + p * l.c;
        for (int ch = 0; ch < l.c; ++ch)
            out[coff[ch]] = in[ch];
    }
    zero_padding(dst, threads);
}

void op_copy_out(const CpuView& src, float* nhwc, int threads) {
    const ViewLayout& l = src.layout;
    const int64_t* coff = src.coff;
    const int64_t pixels = l.pixels();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < pixels; ++p) {
        const float* in = src.buffer + p * l.pixel_stride();
        float* out = nhwc + p * l.c;
        for (int ch = 0; ch < l.c; ++ch)
            out[ch] = in[coff[ch]];
    }
}

void op_upsample_nearest(const CpuView& src, const CpuView& dst, int factor, int threads) {
    const ViewLayout& s = src.layout;
    const ViewLayout& d = dst.layout;
    const int64_t* scoff = src.coff;
    const int64_t* dcoff = dst.coff;
    const bool grouped = s.block == d.block && is_contiguous(s) && is_contiguous(d);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int y = 0; y < d.h; ++y) {
        const int sy = y / factor;
        for (int x = 0; x < d.w; ++x) {
            const int sx = x / factor;
            if (grouped) {
                const int width = group_width(d);
                for (int g = 0; g < d.padded_c() / width; ++g) {
                    const float* in = src.buffer + s.offset(sy, sx, g * width);
                    float* out = dst.buffer + d.offset(y, x, g * width);
                    std::copy(in, in + width, out);
                }
            } else {
                const float* in = src.buffer + (int64_t{sy} * s.w + sx) * s.pixel_stride();
                float* out = dst.buffer + (int64_t{y} * d.w + x) * d.pixel_stride();
                for (int ch = 0; ch < d.c; ++ch) {
                    out[dcoff[ch]] = in[scoff[ch]];
                }
            }
        }
    }
    if (!grouped)
        zero_padding(dst, threads);
}

void op_resize_bilinear(const CpuView& src, const CpuView& dst, int threads) {
    const ViewIndex si(src), di(dst);
    const ViewLayout& s = src.layout;
    const ViewLayout& d = dst.layout;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int y = 0; y < d.h; ++y) {
        const kernels::LinearTaps ty = kernels::resize_linear_taps(y, s.h, d.h);
        for (int x = 0; x < d.w; ++x) {
            const kernels::LinearTaps tx = kernels::resize_linear_taps(x, s.w, d.w);
            for (int ch = 0; ch < d.c; ++ch) {
                const float top =
                    si(ty.i0, tx.i0, ch) * (1.0f - tx.w1) + si(ty.i0, tx.i1, ch) * tx.w1;
                const float bottom =
                    si(ty.i1, tx.i0, ch) * (1.0f - tx.w1) + si(ty.i1, tx.i1, ch) * tx.w1;
                di(y, x, ch) = top * (1.0f - ty.w1) + bottom * ty.w1;
            }
        }
    }
    zero_padding(dst, threads);
}

void op_resize_bicubic(const CpuView& src, const CpuView& dst, int threads) {
    const ViewIndex si(src), di(dst);
    const ViewLayout& s = src.layout;
    const ViewLayout& d = dst.layout;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int y = 0; y < d.h; ++y) {
        const kernels::CubicTaps ty = kernels::cubic_taps(y, s.h, d.h);
        for (int x = 0; x < d.w; ++x) {
            const kernels::CubicTaps tx = kernels::cubic_taps(x, s.w, d.w);
            for (int ch = 0; ch < d.c; ++ch) {
                float acc = 0.0f;
                for (int i = 0; i < 4; ++i) {
                    const int sy = kernels::clamp_index(ty.first + i, s.h);
                    float row = 0.0f;
                    for (int j = 0; j < 4; ++j) {
                        row += tx.w[j] * si(sy, kernels::clamp_index(tx.first + j, s.w), ch);
                    }
                    acc += ty.w[i] * row;
                }
                di(y, x, ch) = acc;
            }
        }
    }
    zero_padding(dst, threads);
}

void op_pixel_shuffle(const CpuView& src, const CpuView& dst, int r, int threads) {
    const ViewIndex si(src), di(dst);
    const ViewLayout& d = dst.layout;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int y = 0; y < d.h; ++y) {
        const int sy = y / r, i = y % r;
        for (int x = 0; x < d.w; ++x) {
            const int sx = x / r, j = x % r;
            for (int ch = 0; ch < d.c; ++ch)
                di(y, x, ch) = si(sy, sx, (ch * r + i) * r + j);
        }
    }
    zero_padding(dst, threads);
}

void op_pixel_unshuffle(const CpuView& src, const CpuView& dst, int r, int threads) {
    const ViewIndex si(src), di(dst);
    const ViewLayout& d = dst.layout;
    const int c_in = src.layout.c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int y = 0; y < d.h; ++y) {
        for (int x = 0; x < d.w; ++x) {
            for (int ch = 0; ch < c_in; ++ch) {
                for (int i = 0; i < r; ++i) {
                    for (int j = 0; j < r; ++j) {
                        di(y, x, (ch * r + i) * r + j) = si(y * r + i, x * r + j, ch);
                    }
                }
            }
        }
    }
    zero_padding(dst, threads);
}

void op_add(const CpuView& a, const CpuView& b, const CpuView& dst, float scale_a, int threads) {
    const ViewIndex ai(a), bi(b), di(dst);
    const ViewLayout& d = dst.layout;
    if (same_walk(a.layout, d) && same_walk(b.layout, d)) {
        const float* pa = a.buffer + a.layout.base_offset();
        const float* pb = b.buffer + b.layout.base_offset();
        float* pd = dst.buffer + d.base_offset();
        const int64_t n = walk_length(d);
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (int64_t i = 0; i < n; ++i)
            pd[i] = pa[i] * scale_a + pb[i];
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int y = 0; y < d.h; ++y) {
        for (int x = 0; x < d.w; ++x) {
            for (int ch = 0; ch < d.c; ++ch) {
                di(y, x, ch) = ai(y, x, ch) * scale_a + bi(y, x, ch);
            }
        }
    }
    zero_padding(dst, threads);
}

void op_epilogue(const CpuView& y, const EpilogueArgs& args, int threads) {
    const ViewLayout& l = y.layout;
    bool flat = is_contiguous(l);
    for (const auto& add : args.adds)
        flat = flat && same_walk(add.first.layout, l);
    const std::vector<float>* slope = args.prelu_slope;
    if (flat) {
        // [groups][pixels][width] floats, walked in chunks of pixels that stay in L1 so the
        // activation and every add cost one pass over memory.
        constexpr int64_t kChunkPixels = 128;
        const int width = group_width(l);
        const int groups = l.padded_c() / width;
        const int64_t pixels = l.pixels();
        const int64_t chunks = (pixels + kChunkPixels - 1) / kChunkPixels;
        float* base = y.buffer + l.base_offset();
        const float alpha = args.act == Activation::LEAKY_RELU ? args.alpha : 0.0f;
#pragma omp parallel for collapse(2) num_threads(threads) schedule(static)
        for (int g = 0; g < groups; ++g) {
            for (int64_t chunk = 0; chunk < chunks; ++chunk) {
                const int64_t p0 = chunk * kChunkPixels;
                const int64_t np = std::min(kChunkPixels, pixels - p0);
                const int64_t start = (int64_t{g} * pixels + p0) * width;
                const int64_t n = np * width;
                float* v = base + start;
                if (args.act == Activation::PRELU) {
                    for (int64_t p = 0; p < np; ++p) {
                        float* px = v + p * width;
                        for (int k = 0; k < width; ++k) {
                            const int ch = g * width + k;
                            const float s = ch < l.c ? (*slope)[static_cast<size_t>(ch)] : 0.0f;
                            px[k] = px[k] > 0.0f ? px[k] : px[k] * s;
                        }
                    }
                } else if (args.act == Activation::SILU) {
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i)
                        v[i] = silu_approx(v[i]);
                } else if (args.act == Activation::GELU) {
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i)
                        v[i] = gelu_approx(v[i]);
                } else if (args.act == Activation::SIGMOID) {
                    for (int64_t i = 0; i < n; ++i)
                        v[i] = 1.0f / (1.0f + std::exp(-v[i]));
                } else if (args.act != Activation::NONE) {
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i)
                        v[i] = v[i] > 0.0f ? v[i] : v[i] * alpha;
                }
                for (const auto& [res, scale] : args.adds) {
                    const float* r = res.buffer + res.layout.base_offset() + start;
                    const float sc = scale;
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i)
                        v[i] = v[i] * sc + r[i];
                }
            }
        }
        return;
    }
    const ViewIndex yi(y);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int row = 0; row < l.h; ++row) {
        for (int x = 0; x < l.w; ++x) {
            for (int ch = 0; ch < l.c; ++ch) {
                const float s = slope ? (*slope)[static_cast<size_t>(ch)] : 0.0f;
                float v = activate(yi(row, x, ch), args.act, args.alpha, s);
                for (const auto& [res, scale] : args.adds)
                    v = v * scale + ViewIndex(res)(row, x, ch);
                yi(row, x, ch) = v;
            }
        }
    }
}

}  // namespace kiln::engine::cpu
