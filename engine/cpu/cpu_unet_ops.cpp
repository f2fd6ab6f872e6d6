#include "engine/cpu/cpu_unet_ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "engine/cpu/cpu_math.h"

namespace kiln::engine::cpu {

namespace {

// Pixels per OpenMP work item: enough to amortise the scheduling, few enough that a
// 16x16 image still splits across threads.
constexpr int64_t kChunkPixels = 64;

// A view as a walk reads it: element (p, ch) at base + p * ps + coff[ch]. ps = 0 repeats one
// pixel (a broadcast operand); base = nullptr for an operand the walk does not have.
struct WalkView {
    float* base = nullptr;
    int64_t ps = 0;
    const int64_t* coff = nullptr;
};

WalkView walk_view(const CpuView& v) {
    return {v.buffer, v.layout.pixel_stride(), v.coff};
}

// Calls f(d, a, b, rows, run) for every run of every pixel chunk: `rows` rows of run.len
// consecutive floats, each view's rows run.len floats apart. Where every view's pixel
// stride equals the run (a full block of blocked views, planar channels) a whole chunk is
// one call; otherwise each pixel is one.
template <typename F>
void walk(const std::vector<ChannelRun>& runs,
          int64_t pixels,
          const WalkView& d,
          const WalkView& a,
          const WalkView& b,
          int threads,
          const F& f) {
    const int64_t chunks = (pixels + kChunkPixels - 1) / kChunkPixels;
#pragma omp parallel for num_threads(threads) schedule(static) if (chunks > 1)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const int64_t p0 = chunk * kChunkPixels;
        const int64_t np = std::min(kChunkPixels, pixels - p0);
        for (const ChannelRun& r : runs) {
            float* dp = d.base + p0 * d.ps + d.coff[r.c0];
            const float* ap = a.base ? a.base + p0 * a.ps + a.coff[r.c0] : nullptr;
            const float* bp = b.base ? b.base + p0 * b.ps + b.coff[r.c0] : nullptr;
            const bool flat =
                d.ps == r.len && (!a.base || a.ps == r.len) && (!b.base || b.ps == r.len);
            if (flat) {
                f(dp, ap, bp, np, r);
                continue;
            }
            for (int64_t p = 0; p < np; ++p) {
                f(dp + p * d.ps, ap ? ap + p * a.ps : nullptr, bp ? bp + p * b.ps : nullptr,
                  int64_t{1}, r);
            }
        }
    }
}

// The exp-based loops below go in blocks of a constant 64 floats: GCC then emits four
// independent unmasked vectors per iteration (with a runtime trip count it emits one masked
// vector per iteration, latency-bound on the exp and reciprocal chains).
constexpr int kBlock = 64;

KILN_CPU_CLONES
void silu_rows(float* __restrict d, const float* __restrict a, int64_t n) {
    int64_t i = 0;
    for (; i + kBlock <= n; i += kBlock) {
#pragma omp simd
        for (int k = 0; k < kBlock; ++k)
            d[i + k] = silu_approx(a[i + k]);
    }
#pragma omp simd
    for (int64_t j = i; j < n; ++j)
        d[j] = silu_approx(a[j]);
}

KILN_CPU_CLONES
void gelu_rows(float* __restrict d, const float* __restrict a, int64_t n) {
    int64_t i = 0;
    for (; i + kBlock <= n; i += kBlock) {
#pragma omp simd
        for (int k = 0; k < kBlock; ++k)
            d[i + k] = gelu_approx(a[i + k]);
    }
#pragma omp simd
    for (int64_t j = i; j < n; ++j)
        d[j] = gelu_approx(a[j]);
}

KILN_CPU_CLONES
void geglu_rows(float* __restrict d,
                const float* __restrict a,
                const float* __restrict g,
                int64_t n) {
    int64_t i = 0;
    for (; i + kBlock <= n; i += kBlock) {
#pragma omp simd
        for (int k = 0; k < kBlock; ++k)
            d[i + k] = a[i + k] * gelu_approx(g[i + k]);
    }
#pragma omp simd
    for (int64_t j = i; j < n; ++j)
        d[j] = a[j] * gelu_approx(g[j]);
}

void relu_rows(float* __restrict d, const float* __restrict a, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i)
        d[i] = a[i] > 0.0f ? a[i] : 0.0f;
}

// rows x len: d = x * scale[k] + shift[k], then SiLU when asked. Rows of one 16-float block
// (blocked buffers) get a constant trip count: unmasked vectors, no per-row loop setup.
KILN_CPU_CLONES
void affine_rows(float* __restrict d,
                 const float* __restrict x,
                 const float* __restrict scale,
                 const float* __restrict shift,
                 int64_t rows,
                 int len,
                 bool silu) {
    if (len == 16 && silu) {
        for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
            for (int k = 0; k < 16; ++k)
                d[r * 16 + k] = silu_approx(x[r * 16 + k] * scale[k] + shift[k]);
        }
        return;
    }
    if (len == 16) {
        for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
            for (int k = 0; k < 16; ++k)
                d[r * 16 + k] = x[r * 16 + k] * scale[k] + shift[k];
        }
        return;
    }
    for (int64_t r = 0; r < rows; ++r) {
        float* dr = d + r * len;
        const float* xr = x + r * len;
        if (silu) {
#pragma omp simd
            for (int k = 0; k < len; ++k)
                dr[k] = silu_approx(xr[k] * scale[k] + shift[k]);
        } else {
#pragma omp simd
            for (int k = 0; k < len; ++k)
                dr[k] = xr[k] * scale[k] + shift[k];
        }
    }
}

typedef float V16 __attribute__((vector_size(64)));
typedef float V8 __attribute__((vector_size(32)));
typedef float V4 __attribute__((vector_size(16)));

// Sum of the 16 lanes by halving (4 vector adds and 3 scalar ones).
inline float hsum(const V16& v) {
    const V8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    const V4 b =
        __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}

// A view's pixels as the norms read or write them: element (p, ch) at
// base + p * ps + coff[ch], channels in runs.
struct RunView {
    float* base;
    int64_t ps;
    const int64_t* coff;
    const ChannelRun* runs;
    size_t run_count;
};

RunView run_view(const CpuView& v, const std::vector<ChannelRun>& runs) {
    return {v.buffer, v.layout.pixel_stride(), v.coff, runs.data(), runs.size()};
}

// Pixels a thread of a layer norm has in flight: each gets its own scratch row, so that
// consecutive pixels' latency chains (sums, square root, division) overlap instead of
// waiting on one another through a shared row.
constexpr int kLayerNormRows = 16;

// Layer norm of pixels [p0, p1): each pixel's c channels gathered into a row of x (scratch:
// kLayerNormRows rows of `row` floats, 64-byte aligned, row >= c rounded up to 16), then
// normalised and scattered to the output.
KILN_CPU_CLONES
void layer_norm_pixels(const RunView& src,
                       const RunView& dst,
                       int c,
                       const float* __restrict gamma,
                       const float* __restrict beta,
                       float eps,
                       bool silu,
                       int64_t p0,
                       int64_t p1,
                       float* __restrict rows,
                       size_t row) {
    // Whole 16-float vectors over x (scratch rounded up to 16 floats), the last one masked:
    // GCC's own reduction epilogues sum the lanes one by one, which dominated here.
    const float inv_c = 1.0f / static_cast<float>(c);
    const int full = c / 16;
    const int tail = c - full * 16;
    V16 mask = {};
    for (int l = 0; l < tail; ++l)
        mask[l] = 1.0f;
    for (int i = 0; i < kLayerNormRows; ++i) {
        for (int k = c; k < (full + (tail ? 1 : 0)) * 16; ++k)
            rows[static_cast<size_t>(i) * row + static_cast<size_t>(k)] =
                0.0f;  // the gathers never write past c; masked lanes must be finite
    }
    for (int64_t p = p0; p < p1; ++p) {
        float* x = rows + static_cast<size_t>((p - p0) & (kLayerNormRows - 1)) * row;
        for (size_t i = 0; i < src.run_count; ++i) {
            const ChannelRun r = src.runs[i];
            const float* in = src.base + p * src.ps + src.coff[r.c0];
            float* xr = x + r.c0;
            if (r.len == 16) {
                // One whole-vector store, so that the vector loads below forward from it.
                V16 t;
                std::memcpy(&t, in, sizeof(t));
                std::memcpy(xr, &t, sizeof(t));
                continue;
            }
            for (int k = 0; k < r.len; ++k)
                xr[k] = in[k];
        }
        const V16* xv = reinterpret_cast<const V16*>(x);
        V16 acc = {};
        for (int v = 0; v < full; ++v)
            acc += xv[v];
        if (tail)
            acc += xv[full] * mask;
        const float mean = hsum(acc) * inv_c;
        V16 acc2 = {};
        for (int v = 0; v < full; ++v) {
            const V16 d = xv[v] - mean;
            acc2 += d * d;
        }
        if (tail) {
            const V16 d = (xv[full] - mean) * mask;
            acc2 += d * d;
        }
        const float rstd = 1.0f / __builtin_sqrtf(hsum(acc2) * inv_c + eps);
        if (silu) {
#pragma omp simd
            for (int k = 0; k < c; ++k)
                x[k] = silu_approx((x[k] - mean) * rstd * gamma[k] + beta[k]);
        } else {
#pragma omp simd
            for (int k = 0; k < c; ++k)
                x[k] = (x[k] - mean) * rstd * gamma[k] + beta[k];
        }
        for (size_t i = 0; i < dst.run_count; ++i) {
            const ChannelRun r = dst.runs[i];
            float* out = dst.base + p * dst.ps + dst.coff[r.c0];
            const float* xr = x + r.c0;
            for (int k = 0; k < r.len; ++k)
                out[k] = xr[k];
        }
    }
}

// Per-channel sums of pixels [p0, p1) into fs (c floats, cleared first): of x, or of
// (x - mean[ch])^2 when mean is given.
KILN_CPU_CLONES
void channel_sums_pixels(const RunView& src,
                         const float* __restrict mean,
                         int64_t p0,
                         int64_t p1,
                         int c,
                         float* __restrict fs) {
    for (int k = 0; k < c; ++k)
        fs[k] = 0.0f;
    for (size_t i = 0; i < src.run_count; ++i) {
        const ChannelRun r = src.runs[i];
        float* sr = fs + r.c0;
        const int len = r.len;
        const float* x = src.base + p0 * src.ps + src.coff[r.c0];
        if (mean) {
            const float* m = mean + r.c0;
            for (int64_t p = p0; p < p1; ++p, x += src.ps) {
                for (int k = 0; k < len; ++k) {
                    const float v = x[k] - m[k];
                    sr[k] += v * v;
                }
            }
        } else {
            for (int64_t p = p0; p < p1; ++p, x += src.ps) {
                for (int k = 0; k < len; ++k)
                    sr[k] += x[k];
            }
        }
    }
}

}  // namespace

int op_thread_slots(int threads) {
    const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return threads <= 0 ? hardware : std::min(threads, hardware);
}

std::vector<ChannelRun> channel_runs(std::initializer_list<const CpuView*> views, int c) {
    std::vector<ChannelRun> runs;
    int c0 = 0;
    for (int ch = 1; ch <= c; ++ch) {
        bool split = ch == c;
        for (const CpuView* v : views)
            split = split || v->coff[ch] != v->coff[ch - 1] + 1;
        if (split) {
            runs.push_back({c0, ch - c0});
            c0 = ch;
        }
    }
    return runs;
}

CpuView sub_view(const CpuView& v, int c0, int c) {
    CpuView s = v;
    s.coff = v.coff + c0;
    s.layout.c = c;
    s.layout.c_offset += c0;
    return s;
}

ActivationOp::ActivationOp(const CpuView& s, const CpuView& d, Activation a)
    : src(s), dst(d), act(a), runs(channel_runs({&src, &dst}, dst.layout.c)) {
    if (act != Activation::RELU && act != Activation::SILU && act != Activation::GELU)
        throw core::Error(core::ErrorCode::UNSUPPORTED, "activation op: RELU, SILU or GELU");
}

void ActivationOp::run(int threads) const {
    const Activation a = act;
    walk(runs, dst.layout.pixels(), walk_view(dst), walk_view(src), {}, threads,
         [a](float* d, const float* x, const float*, int64_t rows, const ChannelRun& r) {
             const int64_t n = rows * r.len;
             if (a == Activation::SILU)
                 silu_rows(d, x, n);
             else if (a == Activation::GELU)
                 gelu_rows(d, x, n);
             else
                 relu_rows(d, x, n);
         });
    zero_padding(dst, threads);
}

GegluOp::GegluOp(const CpuView& src, const CpuView& d)
    : value(sub_view(src, 0, d.layout.c)),
      gate(sub_view(src, d.layout.c, d.layout.c)),
      dst(d),
      runs(channel_runs({&value, &gate, &dst}, d.layout.c)) {}

void GegluOp::run(int threads) const {
    walk(runs, dst.layout.pixels(), walk_view(dst), walk_view(value), walk_view(gate), threads,
         [](float* d, const float* a, const float* g, int64_t rows, const ChannelRun& r) {
             geglu_rows(d, a, g, rows * r.len);
         });
    zero_padding(dst, threads);
}

ConcatOp::ConcatOp(const CpuView& va, const CpuView& vb, const CpuView& d)
    : a(va),
      b(vb),
      dst(d),
      dst_a(sub_view(d, 0, va.layout.c)),
      dst_b(sub_view(d, va.layout.c, vb.layout.c)),
      runs_a(channel_runs({&a, &dst_a}, va.layout.c)),
      runs_b(channel_runs({&b, &dst_b}, vb.layout.c)) {}

void ConcatOp::run(int threads) const {
    const auto copy = [](float* d, const float* s, const float*, int64_t rows,
                         const ChannelRun& r) {
        std::memcpy(d, s, static_cast<size_t>(rows * r.len) * sizeof(float));
    };
    const int64_t pixels = dst.layout.pixels();
    walk(runs_a, pixels, walk_view(dst_a), walk_view(a), {}, threads, copy);
    walk(runs_b, pixels, walk_view(dst_b), walk_view(b), {}, threads, copy);
    zero_padding(dst, threads);
}

AddOp::AddOp(const CpuView& va, const CpuView& vb, const CpuView& d, float s)
    : a(va),
      b(vb),
      dst(d),
      scale(s),
      broadcast(vb.layout.pixels() == 1 && d.layout.pixels() != 1),
      runs(channel_runs({&a, &b, &dst}, d.layout.c)) {}

void AddOp::run(int threads) const {
    if (!broadcast) {
        op_add(a, b, dst, scale, threads);
        return;
    }
    WalkView wb = walk_view(b);
    wb.ps = 0;
    const float s = scale;
    walk(runs, dst.layout.pixels(), walk_view(dst), walk_view(a), wb, threads,
         [s](float* d, const float* x, const float* y, int64_t rows, const ChannelRun& r) {
             // Never flat (b's stride is 0): one pixel per call.
             (void)rows;
#pragma omp simd
             for (int k = 0; k < r.len; ++k)
                 d[k] = x[k] * s + y[k];
         });
    zero_padding(dst, threads);
}

MulOp::MulOp(const CpuView& va, const CpuView& vb, const CpuView& d)
    : a(va),
      b(vb),
      dst(d),
      broadcast(vb.layout.pixels() == 1 && d.layout.pixels() != 1),
      runs(channel_runs({&a, &b, &dst}, d.layout.c)) {}

void MulOp::run(int threads) const {
    WalkView wb = walk_view(b);
    if (broadcast)
        wb.ps = 0;  // one pixel per call, as AddOp's broadcast
    walk(runs, dst.layout.pixels(), walk_view(dst), walk_view(a), wb, threads,
         [](float* d, const float* x, const float* y, int64_t rows, const ChannelRun& r) {
             const int64_t n = rows * r.len;
#pragma omp simd
             for (int64_t k = 0; k < n; ++k)
                 d[k] = x[k] * y[k];
         });
    zero_padding(dst, threads);
}

GroupNormOp::GroupNormOp(const CpuView& s, const CpuView& d, const NormParams& p, int plan_threads)
    : src(s),
      dst(d),
      params(p),
      src_runs(channel_runs({&src}, s.layout.c)),
      runs(channel_runs({&src, &dst}, s.layout.c)),
      threads(plan_threads) {
    if (params.act != Activation::NONE && params.act != Activation::SILU)
        throw core::Error(core::ErrorCode::UNSUPPORTED, "group norm: activation NONE or SILU");
}

size_t GroupNormOp::scratch_bytes_for(int c, int threads) {
    // Per thread: c double sums and c float chunk sums, in rows of whole cache lines; shared:
    // per-channel mean, scale, shift.
    const size_t row = (static_cast<size_t>(c) + 15) / 16 * 16;
    return static_cast<size_t>(threads) * row * (sizeof(double) + sizeof(float)) +
           3 * static_cast<size_t>(c) * sizeof(float) + 64;
}

void GroupNormOp::run(void* scratch) const {
    const int c = src.layout.c;
    const int groups = params.groups;
    const int cg = c / groups;
    const int64_t pixels = src.layout.pixels();
    const size_t cs = static_cast<size_t>(c);
    const size_t row = (cs + 15) / 16 * 16;  // per-thread rows never share a cache line
    double* dacc = static_cast<double*>(scratch);
    float* facc = reinterpret_cast<float*>(dacc + static_cast<size_t>(threads) * row);
    float* mean_ch = facc + static_cast<size_t>(threads) * row;
    float* scale = mean_ch + cs;
    float* shift = scale + cs;
    const RunView in = run_view(src, src_runs);
    const int64_t chunks = (pixels + kChunkPixels - 1) / kChunkPixels;
    const double count = static_cast<double>(pixels) * cg;

    // Per-channel sums over all pixels (centred on mean_ch in the second pass): fp32 within
    // a chunk of pixels, double across chunks and threads.
    const auto channel_sums = [&](bool centred) {
        std::fill(dacc, dacc + static_cast<size_t>(threads) * row, 0.0);
#pragma omp parallel num_threads(threads) if (chunks > 1)
        {
            const size_t t = static_cast<size_t>(omp_get_thread_num());
            double* acc = dacc + t * row;
            float* fs = facc + t * row;
#pragma omp for schedule(static)
            for (int64_t chunk = 0; chunk < chunks; ++chunk) {
                const int64_t p0 = chunk * kChunkPixels;
                const int64_t p1 = std::min(pixels, p0 + kChunkPixels);
                channel_sums_pixels(in, centred ? mean_ch : nullptr, p0, p1, c, fs);
                for (size_t ch = 0; ch < cs; ++ch)
                    acc[ch] += fs[ch];
            }
        }
    };
    // Sum of group g over channels and threads.
    const auto group_sum = [&](int g) {
        double s = 0;
        for (int t = 0; t < threads; ++t) {
            const double* acc = dacc + static_cast<size_t>(t) * row;
            for (int k = 0; k < cg; ++k)
                s += acc[g * cg + k];
        }
        return s;
    };

    channel_sums(false);
    for (int g = 0; g < groups; ++g) {
        const float mean = static_cast<float>(group_sum(g) / count);
        for (int k = 0; k < cg; ++k)
            mean_ch[g * cg + k] = mean;
    }
    channel_sums(true);
    const std::vector<float>& gamma = *params.gamma;
    const std::vector<float>& beta = *params.beta;
    for (int g = 0; g < groups; ++g) {
        const double rstd = 1.0 / std::sqrt(group_sum(g) / count + static_cast<double>(params.eps));
        for (int k = 0; k < cg; ++k) {
            const size_t ch = static_cast<size_t>(g * cg + k);
            scale[ch] = static_cast<float>(rstd * gamma[ch]);
            shift[ch] =
                static_cast<float>(beta[ch] - static_cast<double>(mean_ch[ch]) * rstd * gamma[ch]);
        }
    }
    const bool silu = params.act == Activation::SILU;
    walk(runs, pixels, walk_view(dst), walk_view(src), {}, threads,
         [scale, shift, silu](float* d, const float* x, const float*, int64_t rows,
                              const ChannelRun& r) {
             affine_rows(d, x, scale + r.c0, shift + r.c0, rows, r.len, silu);
         });
    zero_padding(dst, threads);
}

LayerNormOp::LayerNormOp(const CpuView& s, const CpuView& d, const NormParams& p, int plan_threads)
    : src(s),
      dst(d),
      params(p),
      src_runs(channel_runs({&src}, s.layout.c)),
      dst_runs(channel_runs({&dst}, d.layout.c)),
      threads(plan_threads) {
    if (params.act != Activation::NONE && params.act != Activation::SILU)
        throw core::Error(core::ErrorCode::UNSUPPORTED, "layer norm: activation NONE or SILU");
}

size_t LayerNormOp::scratch_bytes_for(int c, int threads) {
    // Per thread: one pixel's channels, rounded to a cache line.
    const size_t row = (static_cast<size_t>(c) + 15) / 16 * 16;
    return static_cast<size_t>(threads) * kLayerNormRows * row * sizeof(float) + 64;
}

void LayerNormOp::run(void* scratch) const {
    const int c = src.layout.c;
    const size_t row = (static_cast<size_t>(c) + 15) / 16 * 16;
    const int64_t pixels = src.layout.pixels();
    const RunView in = run_view(src, src_runs);
    const RunView out = run_view(dst, dst_runs);
    const float* gamma = params.gamma->data();
    const float* beta = params.beta->data();
    const float eps = params.eps;
    const bool silu = params.act == Activation::SILU;
    const int64_t chunks = (pixels + kChunkPixels - 1) / kChunkPixels;
#pragma omp parallel num_threads(threads) if (chunks > 1)
    {
        float* rows = static_cast<float*>(scratch) +
                      static_cast<size_t>(omp_get_thread_num()) * kLayerNormRows * row;
#pragma omp for schedule(static)
        for (int64_t chunk = 0; chunk < chunks; ++chunk) {
            const int64_t p0 = chunk * kChunkPixels;
            layer_norm_pixels(in, out, c, gamma, beta, eps, silu, p0,
                              std::min(pixels, p0 + kChunkPixels), rows, row);
        }
    }
    zero_padding(dst, threads);
}

}  // namespace kiln::engine::cpu
