// Helpers for the diffusion tests: committed fixtures under tests/data/diffusion.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "image/npy.h"

namespace kiln::test {

inline std::filesystem::path diffusion_data() {
    return std::filesystem::path(KILN_TEST_DATA) / "diffusion";
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream text;
    text << in.rdbuf();
    return nlohmann::json::parse(text.str());
}

inline std::vector<float> read_f32(const std::filesystem::path& p,
                                   std::vector<int64_t>* shape = nullptr) {
    const image::NpyArray a = image::read_npy(p);
    if (shape)
        *shape = a.shape;
    return a.as_f32();
}

// [n, c, h, w] -> [n, h, w, c]
inline std::vector<float> nchw_to_nhwc(const std::vector<float>& v, int n, int c, int h, int w) {
    std::vector<float> out(v.size());
    for (int b = 0; b < n; ++b)
        for (int ch = 0; ch < c; ++ch)
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x)
                    out[((static_cast<size_t>(b) * h + y) * w + x) * c + ch] =
                        v[((static_cast<size_t>(b) * c + ch) * h + y) * w + x];
    return out;
}

inline float max_abs(const std::vector<float>& v) {
    float m = 0;
    for (float x : v)
        m = std::max(m, std::abs(x));
    return m;
}

inline float max_abs_diff(const float* a, const float* b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; ++i)
        m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

}  // namespace kiln::test
