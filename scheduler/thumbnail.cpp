#include "scheduler/thumbnail.h"

#include <algorithm>

namespace kiln::scheduler {

image::Image make_thumbnail(const image::Image& source, int max_side) {
    const int longer = std::max(source.width, source.height);
    if (longer <= max_side)
        return source;
    image::Image out;
    out.width = std::max(1, static_cast<int>(int64_t{source.width} * max_side / longer));
    out.height = std::max(1, static_cast<int>(int64_t{source.height} * max_side / longer));
    out.channels = source.channels;
    out.bit_depth = source.bit_depth;
    out.samples.resize(out.sample_count());
    const auto c = static_cast<size_t>(source.channels);
    std::vector<double> sum(c);
    for (int y = 0; y < out.height; ++y) {
        const int y0 = static_cast<int>(int64_t{y} * source.height / out.height);
        const int y1 =
            std::max(y0 + 1, static_cast<int>(int64_t{y + 1} * source.height / out.height));
        for (int x = 0; x < out.width; ++x) {
            const int x0 = static_cast<int>(int64_t{x} * source.width / out.width);
            const int x1 =
                std::max(x0 + 1, static_cast<int>(int64_t{x + 1} * source.width / out.width));
            std::fill(sum.begin(), sum.end(), 0.0);
            for (int sy = y0; sy < y1; ++sy) {
                for (int sx = x0; sx < x1; ++sx) {
                    const size_t base =
                        (static_cast<size_t>(sy) * static_cast<size_t>(source.width) +
                         static_cast<size_t>(sx)) *
                        c;
                    for (size_t k = 0; k < c; ++k)
                        sum[k] += source.samples[base + k];
                }
            }
            const double n = static_cast<double>((y1 - y0) * (x1 - x0));
            const size_t base =
                (static_cast<size_t>(y) * static_cast<size_t>(out.width) + static_cast<size_t>(x)) *
                c;
            for (size_t k = 0; k < c; ++k)
                out.samples[base + k] = static_cast<uint16_t>(sum[k] / n + 0.5);
        }
    }
    return out;
}

}  // namespace kiln::scheduler
