#include "engine/cpu/cpu_gan_ops.h"

#include <algorithm>
#include <cstring>

namespace kiln::engine::cpu {

void GlobalAvgPoolOp::run(int threads) const {
    const ViewLayout& s = src.layout;
    const int64_t pixels = s.pixels();
    const int64_t ps = s.pixel_stride();
    const double inv = 1.0 / static_cast<double>(pixels);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ch = 0; ch < s.c; ++ch) {
        const float* x = src.buffer + src.coff[ch];
        double sum = 0.0;
        for (int64_t p = 0; p < pixels; ++p)
            sum += x[p * ps];
        dst.buffer[dst.coff[ch]] = static_cast<float>(sum * inv);
    }
    zero_padding(dst, threads);
}

void MaxPoolOp::run(int threads) const {
    const ViewLayout& d = dst.layout;
    const int64_t ps = src.layout.pixel_stride();
    const int64_t pd = d.pixel_stride();
    const int sw = src.layout.w;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int y = 0; y < d.h; ++y) {
        for (int x = 0; x < d.w; ++x) {
            const int64_t corner = static_cast<int64_t>(y * stride) * sw + x * stride;
            for (int ch = 0; ch < d.c; ++ch) {
                const float* s = src.buffer + src.coff[ch];
                float m = s[corner * ps];
                for (int ky = 0; ky < kernel; ++ky)
                    for (int kx = 0; kx < kernel; ++kx)
                        m = std::max(m, s[(corner + static_cast<int64_t>(ky) * sw + kx) * ps]);
                dst.buffer[(static_cast<int64_t>(y) * d.w + x) * pd + dst.coff[ch]] = m;
            }
        }
    }
    zero_padding(dst, threads);
}

CropOp::CropOp(const CpuView& s, const CpuView& d, int crop_top, int crop_left)
    : src(s),
      dst(d),
      top(crop_top),
      left(crop_left),
      runs(channel_runs({&src, &dst}, d.layout.c)) {}

void CropOp::run(int threads) const {
    const ViewLayout& d = dst.layout;
    const ViewLayout& s = src.layout;
    const int64_t ps = s.pixel_stride();
    const int64_t pd = d.pixel_stride();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int y = 0; y < d.h; ++y) {
        for (int x = 0; x < d.w; ++x) {
            const int64_t sp = static_cast<int64_t>(y + top) * s.w + (x + left);
            const int64_t dp = static_cast<int64_t>(y) * d.w + x;
            for (const ChannelRun& r : runs) {
                std::memcpy(dst.buffer + dp * pd + dst.coff[r.c0],
                            src.buffer + sp * ps + src.coff[r.c0],
                            static_cast<size_t>(r.len) * sizeof(float));
            }
        }
    }
    zero_padding(dst, threads);
}

}  // namespace kiln::engine::cpu
