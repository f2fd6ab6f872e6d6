#include "engine/cpu/cpu_attention.h"

#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "core/error.h"
#include "engine/cpu/cpu_math.h"

namespace kiln::engine::cpu {

namespace {

size_t round_floats(size_t n) {
    return (n + 15) / 16 * 16;  // 64 bytes: threads' regions never share a cache line
}

// 32 queries at once, one per vector lane of two 16-float vectors (GCC vector extensions:
// zmm registers with AVX-512, lowered to narrower ones otherwise): qt [d][32] (queries
// transposed, already scaled), kh and vh [keys][d] (one head), s [keys][32] scratch; out
// [d][32] receives softmax(q k^T) v. Each K or V element loaded feeds two FMAs, and four
// keys (then four features) per pass keep eight FMA chains in flight.
typedef float V16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));
constexpr int kLaneQueries = 32;

// 16 floats at p (64-byte aligned) as one vector; references, not values, since passing
// 64-byte vectors by value has a different ABI with and without AVX-512.
inline const V16& load16(const float* p) {
    return *reinterpret_cast<const V16*>(p);
}

inline V16& at16(float* p) {
    return *reinterpret_cast<V16*>(p);
}

KILN_CPU_CLONES
void attend_lanes(const float* __restrict qt,
                  const float* __restrict kh,
                  const float* __restrict vh,
                  int d,
                  int keys,
                  float* __restrict s,
                  float* __restrict out) {
    constexpr int W = kLaneQueries;
    const V16 zero = {};
    V16 m0 = zero - 3.0e38f, m1 = m0;
    int j = 0;
    for (; j + 4 <= keys; j += 4) {
        const float* k0 = kh + static_cast<size_t>(j) * d;
        const float* k1 = k0 + d;
        const float* k2 = k1 + d;
        const float* k3 = k2 + d;
        V16 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        V16 b0 = zero, b1 = zero, b2 = zero, b3 = zero;
        for (int e = 0; e < d; ++e) {
            const V16 q = load16(qt + e * W);
            const V16 r = load16(qt + e * W + 16);
            a0 += q * k0[e];
            b0 += r * k0[e];
            a1 += q * k1[e];
            b1 += r * k1[e];
            a2 += q * k2[e];
            b2 += r * k2[e];
            a3 += q * k3[e];
            b3 += r * k3[e];
        }
        float* sj = s + j * W;
        at16(sj) = a0;
        at16(sj + 16) = b0;
        at16(sj + W) = a1;
        at16(sj + W + 16) = b1;
        at16(sj + 2 * W) = a2;
        at16(sj + 2 * W + 16) = b2;
        at16(sj + 3 * W) = a3;
        at16(sj + 3 * W + 16) = b3;
        const V16 ma = a0 > a1 ? a0 : a1;
        const V16 mb = a2 > a3 ? a2 : a3;
        const V16 na = b0 > b1 ? b0 : b1;
        const V16 nb = b2 > b3 ? b2 : b3;
        m0 = m0 > ma ? m0 : ma;
        m0 = m0 > mb ? m0 : mb;
        m1 = m1 > na ? m1 : na;
        m1 = m1 > nb ? m1 : nb;
    }
    for (; j < keys; ++j) {
        const float* k0 = kh + static_cast<size_t>(j) * d;
        V16 a0 = zero, b0 = zero;
        for (int e = 0; e < d; ++e) {
            a0 += load16(qt + e * W) * k0[e];
            b0 += load16(qt + e * W + 16) * k0[e];
        }
        at16(s + j * W) = a0;
        at16(s + j * W + 16) = b0;
        m0 = m0 > a0 ? m0 : a0;
        m1 = m1 > b0 ? m1 : b0;
    }
    // exp(s - m), as exp_approx but on whole vectors.
    V16 sum0 = zero, sum1 = zero;
    for (int i = 0; i < 2 * keys; ++i) {
        const bool hi = i & 1;
        V16 x = load16(s + i * 16) - (hi ? m1 : m0);
        x = x < -87.0f ? zero - 87.0f : x;
        const V16 fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
        V16 r = x - fn * 0.693359375f;
        r = r + fn * 2.12194440e-4f;
        V16 p = zero + 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        p = p * (r * r) + r + 1.0f;
        const I16 n = __builtin_convertvector(fn, I16);
        const V16 ex = p * reinterpret_cast<V16>((n + 127) << 23);
        at16(s + i * 16) = ex;
        if (hi)
            sum1 += ex;
        else
            sum0 += ex;
    }
    const V16 inv0 = 1.0f / sum0;
    const V16 inv1 = 1.0f / sum1;
    int e = 0;
    for (; e + 4 <= d; e += 4) {
        V16 o0 = zero, o1 = zero, o2 = zero, o3 = zero;
        V16 u0 = zero, u1 = zero, u2 = zero, u3 = zero;
        for (j = 0; j < keys; ++j) {
            const V16 p = load16(s + j * W);
            const V16 q = load16(s + j * W + 16);
            const float* vj = vh + static_cast<size_t>(j) * d + e;
            o0 += p * vj[0];
            u0 += q * vj[0];
            o1 += p * vj[1];
            u1 += q * vj[1];
            o2 += p * vj[2];
            u2 += q * vj[2];
            o3 += p * vj[3];
            u3 += q * vj[3];
        }
        float* oe = out + e * W;
        at16(oe) = o0 * inv0;
        at16(oe + 16) = u0 * inv1;
        at16(oe + W) = o1 * inv0;
        at16(oe + W + 16) = u1 * inv1;
        at16(oe + 2 * W) = o2 * inv0;
        at16(oe + 2 * W + 16) = u2 * inv1;
        at16(oe + 3 * W) = o3 * inv0;
        at16(oe + 3 * W + 16) = u3 * inv1;
    }
    for (; e < d; ++e) {
        V16 o0 = zero, u0 = zero;
        for (j = 0; j < keys; ++j) {
            const float v = vh[static_cast<size_t>(j) * d + e];
            o0 += load16(s + j * W) * v;
            u0 += load16(s + j * W + 16) * v;
        }
        at16(out + e * W) = o0 * inv0;
        at16(out + e * W + 16) = u0 * inv1;
    }
}

}  // namespace

// The maximum is kept in 16 lanes (a plain max reduction does not vectorise without
// fast-math).
KILN_CPU_CLONES
float softmax_exp_row(float* __restrict s, int n) {
    constexpr int kLanes = 16;
    float lanes[kLanes];
    for (int l = 0; l < kLanes; ++l)
        lanes[l] = s[0];
    int i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        for (int l = 0; l < kLanes; ++l)
            lanes[l] = s[i + l] > lanes[l] ? s[i + l] : lanes[l];
    }
    float m = s[0];
    for (int l = 0; l < kLanes; ++l)
        m = lanes[l] > m ? lanes[l] : m;
    for (; i < n; ++i)
        m = s[i] > m ? s[i] : m;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; ++j) {
        const float e = exp_approx(s[j] - m);
        s[j] = e;
        sum += e;
    }
    return 1.0f / sum;
}

AttentionOp::AttentionOp(const CpuView& q,
                         const CpuView& k,
                         const CpuView& v,
                         const CpuView& dst,
                         const AttentionParams& params,
                         int threads)
    : q_(q),
      k_(k),
      v_(v),
      dst_(dst),
      queries_(static_cast<int>(q.layout.pixels())),
      keys_(static_cast<int>(k.layout.pixels())),
      channels_(q.layout.c),
      heads_(params.heads),
      d_(q.layout.c / params.heads),
      scale_(params.scale),
      threads_(threads),
      lanes_(use_lanes(keys_)),
      tile_(tile_rows(queries_, keys_, heads_, threads)) {
    if (heads_ < 1 || channels_ % heads_ != 0 || k.layout.c != channels_ ||
        v.layout.c != channels_ || v.layout.pixels() != keys_ || dst.layout.c != channels_ ||
        dst.layout.pixels() != queries_) {
        throw core::Error(core::ErrorCode::INTERNAL,
                          "attention: q, k, v and output shapes do not fit");
    }
}

bool AttentionOp::use_lanes(int keys) {
    // The lane kernel keeps a [keys][32] score block; past a few thousand keys it leaves L2
    // and sgemm's blocking is the safer choice.
    return keys <= kLaneMaxKeys;
}

int AttentionOp::tile_rows(int queries, int keys, int heads, int threads) {
    if (use_lanes(keys))
        return kLaneQueries;
    // 64 query rows keep a tile's scores in L2 for a few thousand keys; smaller tiles when
    // there are too few tasks to share among the threads.
    int tile = 64;
    while (tile > 16 && static_cast<int64_t>(heads) * ((queries + tile - 1) / tile) < 2 * threads)
        tile /= 2;
    return std::max(1, std::min(tile, queries));
}

size_t AttentionOp::scratch_bytes_for(int queries, int keys, int channels, int heads, int threads) {
    const int tile = tile_rows(queries, keys, heads, threads);
    const size_t d = static_cast<size_t>(channels / heads);
    const size_t t = static_cast<size_t>(tile);
    const size_t packed = 2 * round_floats(static_cast<size_t>(keys) * channels);
    const size_t per_thread = 2 * round_floats(t * d) + round_floats(t * keys) + round_floats(t);
    return (packed + static_cast<size_t>(threads) * per_thread) * sizeof(float);
}

size_t AttentionOp::scratch_bytes() const {
    return scratch_bytes_for(queries_, keys_, channels_, heads_, threads_);
}

std::string AttentionOp::describe() const {
    return std::string(lanes_ ? "lane attention " : "sgemm attention ") + std::to_string(heads_) +
           "x" + std::to_string(d_) + ", " + std::to_string(queries_) + " queries (tiles of " +
           std::to_string(tile_) + ") x " + std::to_string(keys_) + " keys";
}

void AttentionOp::run(void* scratch) const {
    const int d = d_, heads = heads_, keys = keys_, queries = queries_, tile = tile_;
    const size_t dd = static_cast<size_t>(d);
    const size_t hk = static_cast<size_t>(keys) * dd;  // floats of one head of K or V
    float* kp = static_cast<float*>(scratch);
    float* vp = kp + round_floats(static_cast<size_t>(keys) * channels_);
    float* per = vp + round_floats(static_cast<size_t>(keys) * channels_);
    const size_t t = static_cast<size_t>(tile);
    const size_t qt_size = round_floats(t * dd);
    const size_t s_size = round_floats(t * keys);
    const size_t per_thread = 2 * qt_size + s_size + round_floats(t);
    const int tiles = (queries + tile - 1) / tile;
    const int tasks = heads * tiles;
    const bool lanes = lanes_;

    const float* kb = k_.buffer;
    const float* vb = v_.buffer;
    const float* qb = q_.buffer;
    float* ob = dst_.buffer;
    const int64_t kps = k_.layout.pixel_stride(), vps = v_.layout.pixel_stride();
    const int64_t qps = q_.layout.pixel_stride(), ops = dst_.layout.pixel_stride();
    const int64_t *kc = k_.coff, *vc = v_.coff, *qc = q_.coff, *oc = dst_.coff;
    const float scale = scale_;
    std::atomic<int> failed{0};

#pragma omp parallel num_threads(threads_) if (tasks > 1 || keys > 64)
    {
        // K and V, head-major: kp[(head * keys + key) * d + j].
#pragma omp for schedule(static)
        for (int key = 0; key < keys; ++key) {
            const float* kr = kb + key * kps;
            const float* vr = vb + key * vps;
            for (int h = 0; h < heads; ++h) {
                float* kd = kp + static_cast<size_t>(h) * hk + static_cast<size_t>(key) * dd;
                float* vd = vp + static_cast<size_t>(h) * hk + static_cast<size_t>(key) * dd;
                const int64_t* kch = kc + h * d;
                const int64_t* vch = vc + h * d;
                for (int j = 0; j < d; ++j) {
                    kd[j] = kr[kch[j]];
                    vd[j] = vr[vch[j]];
                }
            }
        }
        // (implicit barrier)
        float* qt = per + static_cast<size_t>(omp_get_thread_num()) * per_thread;
        float* s = qt + qt_size;
        float* o = s + s_size;
        float* inv = o + qt_size;
#pragma omp for schedule(static)
        for (int task = 0; task < tasks; ++task) {
            const int h = task / tiles;
            const int q0 = (task - h * tiles) * tile;
            const int rows = std::min(tile, queries - q0);
            const int64_t* qch = qc + h * d;
            const int64_t* och = oc + h * d;
            const float* kh = kp + static_cast<size_t>(h) * hk;
            const float* vh = vp + static_cast<size_t>(h) * hk;
            if (lanes) {
                // qt [d][32], scaled; lanes past the last query stay zero.
                constexpr int W = kLaneQueries;
                std::fill(qt, qt + W * dd, 0.0f);
                for (int r = 0; r < rows; ++r) {
                    const float* qr = qb + (q0 + r) * qps;
                    for (int j = 0; j < d; ++j)
                        qt[j * W + r] = qr[qch[j]] * scale;
                }
                attend_lanes(qt, kh, vh, d, keys, s, o);
                for (int r = 0; r < rows; ++r) {
                    float* out = ob + (q0 + r) * ops;
                    for (int j = 0; j < d; ++j)
                        out[och[j]] = o[j * W + r];
                }
                continue;
            }
            for (int r = 0; r < rows; ++r) {
                const float* qr = qb + (q0 + r) * qps;
                float* qd = qt + static_cast<size_t>(r) * dd;
                for (int j = 0; j < d; ++j)
                    qd[j] = qr[qch[j]];
            }
            // s = scale * q k^T: rows x keys
            dnnl_status_t st =
                dnnl_sgemm('N', 'T', rows, keys, d, scale, qt, d, kh, d, 0.0f, s, keys);
            for (int r = 0; r < rows; ++r)
                inv[r] = softmax_exp_row(s + static_cast<size_t>(r) * keys, keys);
            // o = exp(s) v: rows x d
            if (st == dnnl_success)
                st = dnnl_sgemm('N', 'N', rows, d, keys, 1.0f, s, keys, vh, d, 0.0f, o, d);
            if (st != dnnl_success)
                failed.store(static_cast<int>(st));
            for (int r = 0; r < rows; ++r) {
                float* out = ob + (q0 + r) * ops;
                const float* orow = o + static_cast<size_t>(r) * dd;
                const float f = inv[r];
                for (int j = 0; j < d; ++j)
                    out[och[j]] = orow[j] * f;
            }
        }
    }
    if (failed.load() != 0) {
        throw core::Error(core::ErrorCode::INTERNAL, "oneDNN sgemm failed in attention (status " +
                                                         std::to_string(failed.load()) + ")");
    }
    zero_padding(dst_, threads_);
}

}  // namespace kiln::engine::cpu
