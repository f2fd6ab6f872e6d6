// Random weights and inputs, and the comparison metrics (NMSE, max abs error), shared by the
// op-case table and the backend tests.
#pragma once

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/graph/graph.h"

namespace kiln::test {

inline std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v)
        x = dist(rng);
    return v;
}

inline engine::ConvWeights random_conv(int in,
                                       int out,
                                       int kernel,
                                       uint32_t seed,
                                       bool bias = true) {
    engine::ConvWeights w;
    w.in_channels = in;
    w.out_channels = out;
    w.kernel = kernel;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in * kernel * kernel));
    w.weight = std::make_shared<const std::vector<float>>(
        random_vector(static_cast<size_t>(in) * out * kernel * kernel, seed, scale));
    if (bias) {
        w.bias = std::make_shared<const std::vector<float>>(
            random_vector(static_cast<size_t>(out), seed + 1, 0.1f));
    }
    return w;
}

struct Comparison {
    double nmse = 0;  // sum (a-b)^2 / sum b^2
    double max_abs = 0;
    bool finite = true;
};

inline Comparison compare(const std::vector<float>& got, const std::vector<float>& want) {
    Comparison c;
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
        if (!std::isfinite(got[i]))
            c.finite = false;
        const double d = static_cast<double>(got[i]) - want[i];
        num += d * d;
        den += static_cast<double>(want[i]) * want[i];
        c.max_abs = std::max(c.max_abs, std::abs(d));
    }
    c.nmse = den > 0 ? num / den : num;
    return c;
}

}  // namespace kiln::test
