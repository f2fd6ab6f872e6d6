#include "engine/cpu/cpu_window_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "engine/cpu/cpu_attention.h"
#include "engine/cpu/cpu_math.h"
#include "kernels/window_math.h"

namespace kiln::engine::cpu {

namespace {

// Where token t of group g lies (the definitions in engine/graph/graph.h), as the CUDA
// kernels map it.
kernels::PixelGroupMap group_map(OpKind kind, const WindowAttentionParams& p, int h, int w) {
    return kernels::pixel_group_map(
        kernels::group_layout(kind == OpKind::CHANNEL_ATTENTION, p.groups == PixelGroups::GRID), h,
        w, p.window);
}

// Floats of one thread's window-attention scratch: the group's qkv rows ([n][3c]), one
// head's keys transposed, one query's scores and the group's output rows ([n][c]); whole
// cache lines each.
size_t lines(size_t floats) {
    return (floats + 15) / 16 * 16;
}

size_t window_floats_per_thread(int window, int channels) {
    const size_t n = static_cast<size_t>(window) * static_cast<size_t>(window);
    const size_t c = static_cast<size_t>(channels);
    return lines(3 * n * c) + lines(n * c) + lines(n) + lines(n * c);
}

// One head of one group: out [n][d] (row stride `out_stride`) = softmax(scale q k^T + bias) v,
// with q, k, v the head's columns of rows `stride` floats apart. kt [d][n] and s [n] are
// scratch. The scores of a query are built along the keys (contiguous in kt) and the output
// along the features, so both inner loops are vector loops.
KILN_CPU_CLONES
void window_head(const float* __restrict q,
                 const float* __restrict k,
                 const float* __restrict v,
                 int stride,
                 int n,
                 int d,
                 float scale,
                 const float* __restrict bias,
                 float* __restrict kt,
                 float* __restrict s,
                 float* __restrict out,
                 int out_stride) {
    for (int u = 0; u < n; ++u)
        for (int e = 0; e < d; ++e)
            kt[e * n + u] = k[u * stride + e];
    for (int t = 0; t < n; ++t) {
        const float* qt = q + t * stride;
        if (bias) {
            const float* bt = bias + static_cast<size_t>(t) * n;
#pragma omp simd
            for (int u = 0; u < n; ++u)
                s[u] = bt[u];
        } else {
#pragma omp simd
            for (int u = 0; u < n; ++u)
                s[u] = 0.0f;
        }
        for (int e = 0; e < d; ++e) {
            const float qe = qt[e] * scale;
            const float* ke = kt + e * n;
#pragma omp simd
            for (int u = 0; u < n; ++u)
                s[u] += qe * ke[u];
        }
        const float inv = softmax_exp_row(s, n);
        float* ot = out + t * out_stride;
#pragma omp simd
        for (int e = 0; e < d; ++e)
            ot[e] = 0.0f;
        for (int u = 0; u < n; ++u) {
            const float p = s[u] * inv;
            const float* vu = v + u * stride;
#pragma omp simd
            for (int e = 0; e < d; ++e)
                ot[e] += p * vu[e];
        }
    }
}

// Copies pixel `pixel`'s channels into the dense row `row` (run by run: a blocked buffer's
// channels are contiguous within a block), or back.
void gather_row(const CpuView& v, const std::vector<ChannelRun>& runs, int64_t pixel, float* row) {
    const float* src = v.buffer + pixel * v.layout.pixel_stride();
    for (const ChannelRun& r : runs)
        std::memcpy(row + r.c0, src + v.coff[r.c0], static_cast<size_t>(r.len) * sizeof(float));
}

void scatter_row(const CpuView& v,
                 const std::vector<ChannelRun>& runs,
                 int64_t pixel,
                 const float* row) {
    float* dst = v.buffer + pixel * v.layout.pixel_stride();
    for (const ChannelRun& r : runs)
        std::memcpy(dst + v.coff[r.c0], row + r.c0, static_cast<size_t>(r.len) * sizeof(float));
}

// The channel attention keeps a group's sums and a pixel's channels on its stack.
constexpr int kMaxChannelHead = 32;
constexpr int kMaxChannels = 256;

// Per head, the d x d products of q and k channels over a group's pixels and the squared
// norms, in double.
struct ChannelSums {
    double qk[kMaxChannels * kMaxChannelHead] = {};  // per head [d][d]
    double q2[kMaxChannels] = {};
    double k2[kMaxChannels] = {};
};

KILN_CPU_CLONES
void accumulate_channel_products(const float* __restrict q,
                                 const float* __restrict k,
                                 int heads,
                                 int d,
                                 ChannelSums& sums) {
    const int c = heads * d;
#pragma omp simd
    for (int ch = 0; ch < c; ++ch) {
        sums.q2[ch] += static_cast<double>(q[ch]) * q[ch];
        sums.k2[ch] += static_cast<double>(k[ch]) * k[ch];
    }
    for (int hd = 0; hd < heads; ++hd) {
        const float* kh = k + hd * d;
        double* block = sums.qk + hd * d * d;
        for (int a = 0; a < d; ++a) {
            const double qa = q[hd * d + a];
            double* row = block + a * d;
#pragma omp simd
            for (int b = 0; b < d; ++b)
                row[b] += qa * kh[b];
        }
    }
}

// p [d][d] = softmax over b of t * q^_a . k^_b, with x^ = x / max(|x|, 1e-12) (F.normalize).
void channel_softmax(const ChannelSums& sums, int hd, int d, double t, float* p) {
    const double* block = sums.qk + hd * d * d;
    for (int a = 0; a < d; ++a) {
        const double qn = std::max(std::sqrt(sums.q2[hd * d + a]), 1e-12);
        double row[kMaxChannelHead];
        double m = -std::numeric_limits<double>::infinity();
        for (int b = 0; b < d; ++b) {
            const double kn = std::max(std::sqrt(sums.k2[hd * d + b]), 1e-12);
            row[b] = block[a * d + b] / (qn * kn) * t;
            m = std::max(m, row[b]);
        }
        double sum = 0.0;
        for (int b = 0; b < d; ++b) {
            row[b] = std::exp(row[b] - m);
            sum += row[b];
        }
        for (int b = 0; b < d; ++b)
            p[a * d + b] = static_cast<float>(row[b] / sum);
    }
}

// out[head a] = sum_b p[head][a][b] v[head b], every head.
KILN_CPU_CLONES
void mix_channels(const float* __restrict p,
                  const float* __restrict v,
                  int heads,
                  int d,
                  float* __restrict out) {
    for (int hd = 0; hd < heads; ++hd) {
        const float* ph = p + hd * d * d;
        const float* vh = v + hd * d;
        for (int a = 0; a < d; ++a) {
            const float* pa = ph + a * d;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int b = 0; b < d; ++b)
                acc += pa[b] * vh[b];
            out[hd * d + a] = acc;
        }
    }
}

}  // namespace

WindowAttentionOp::WindowAttentionOp(const CpuView& qkv,
                                     const CpuView& dst,
                                     const WindowAttentionParams& params,
                                     int threads)
    : qkv_(qkv),
      dst_(dst),
      params_(params),
      threads_(std::max(1, threads)),
      qkv_runs_(channel_runs({&qkv_}, qkv.layout.c)),
      dst_runs_(channel_runs({&dst_}, dst.layout.c)) {}

size_t WindowAttentionOp::scratch_bytes_for(int window, int channels, int threads) {
    return window_floats_per_thread(window, channels) * sizeof(float) *
           static_cast<size_t>(std::max(1, threads));
}

size_t WindowAttentionOp::scratch_bytes() const {
    return scratch_bytes_for(params_.window, dst_.layout.c, threads_);
}

void WindowAttentionOp::run(void* scratch) const {
    const kernels::PixelGroupMap groups =
        group_map(OpKind::WINDOW_ATTENTION, params_, dst_.layout.h, dst_.layout.w);
    const int n = groups.members();
    const int c = dst_.layout.c;
    const int heads = params_.heads;
    const int d = c / heads;
    const float scale = params_.scale;
    const float* bias = params_.bias ? params_.bias->data() : nullptr;
    const size_t per_thread = window_floats_per_thread(params_.window, c);
    float* base = static_cast<float*>(scratch);
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int g = 0; g < groups.count(); ++g) {
        const size_t stride = 3 * static_cast<size_t>(c);
        float* rows = base + static_cast<size_t>(omp_get_thread_num()) * per_thread;  // [n][3c]
        float* kt = rows + lines(n * stride);                                         // [d][n]
        float* scores = kt + lines(static_cast<size_t>(n) * c);
        float* out = scores + lines(static_cast<size_t>(n));  // [n][c]
        for (int t = 0; t < n; ++t)
            gather_row(qkv_, qkv_runs_, groups.pixel(g, t), rows + t * stride);
        for (int hd = 0; hd < heads; ++hd) {
            const int c0 = hd * d;
            window_head(rows + c0, rows + c + c0, rows + 2 * c + c0, static_cast<int>(stride), n, d,
                        scale, bias ? bias + static_cast<size_t>(hd) * n * n : nullptr, kt, scores,
                        out + c0, c);
        }
        for (int t = 0; t < n; ++t)
            scatter_row(dst_, dst_runs_, groups.pixel(g, t), out + t * c);
    }
    zero_padding(dst_, threads_);
}

ChannelAttentionOp::ChannelAttentionOp(const CpuView& qkv,
                                       const CpuView& dst,
                                       const WindowAttentionParams& params)
    : qkv_(qkv),
      v_(sub_view(qkv, 2 * dst.layout.c, dst.layout.c)),
      dst_(dst),
      params_(params),
      qk_runs_(channel_runs({&qkv_}, 2 * dst.layout.c)),
      v_runs_(channel_runs({&v_}, dst.layout.c)),
      dst_runs_(channel_runs({&dst_}, dst.layout.c)) {
    if (dst.layout.c / params.heads > kMaxChannelHead || dst.layout.c > kMaxChannels) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "channel attention: more than 256 channels or heads of more than 32");
    }
}

void ChannelAttentionOp::run(int threads) const {
    const kernels::PixelGroupMap groups =
        group_map(OpKind::CHANNEL_ATTENTION, params_, dst_.layout.h, dst_.layout.w);
    const int n = groups.members();
    const int c = dst_.layout.c;
    const int heads = params_.heads;
    const int d = c / heads;
    const float* temperature = params_.temperature->data();
    // One task per group and every head at once: each pixel's q, k and v are read once.
#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int g = 0; g < groups.count(); ++g) {
        ChannelSums sums;
        float qk[2 * kMaxChannels];
        for (int t = 0; t < n; ++t) {
            gather_row(qkv_, qk_runs_, groups.pixel(g, t), qk);
            accumulate_channel_products(qk, qk + c, heads, d, sums);
        }
        float p[kMaxChannels * kMaxChannelHead];  // per head [d][d], heads one after another
        for (int hd = 0; hd < heads; ++hd)
            channel_softmax(sums, hd, d, temperature[hd], p + hd * d * d);
        for (int t = 0; t < n; ++t) {
            const int64_t pixel = groups.pixel(g, t);
            float v[kMaxChannels], out[kMaxChannels];
            gather_row(v_, v_runs_, pixel, v);
            mix_channels(p, v, heads, d, out);
            scatter_row(dst_, dst_runs_, pixel, out);
        }
    }
    zero_padding(dst_, threads);
}

}  // namespace kiln::engine::cpu
