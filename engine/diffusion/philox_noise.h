// Seeded Gaussian noise from a counter-based generator, so that a seed gives the same noise
// wherever and in whatever order it is drawn (CPU threads, a CUDA kernel, a resumed job).
//
// Generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11), key = the 64-bit seed as (low, high) words, counter = (pair index low word, pair index
// high word, image, stream). Normal number j of (seed, image, stream) is the Box-Muller transform
// of the words (2*(j%2), 2*(j%2)+1) of block j/2:
//   u1 = (w0 + 1) / 2^32 in (0, 1], u2 = w1 / 2^32,  z = sqrt(-2 ln u1) * cos(2 pi u2),
// evaluated in double and rounded to float. Streams: 0 is the initial latent, s >= 1 the noise
// that step s - 1 of an ancestral sampler (DDPM) adds. Element order is the latent's NHWC order.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define KILN_PHILOX_HD __host__ __device__
#else
#define KILN_PHILOX_HD
#endif

namespace kiln::engine::diffusion {

struct PhiloxBlock {
    uint32_t v[4];
};

KILN_PHILOX_HD inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
    const uint64_t product = static_cast<uint64_t>(a) * b;
    hi = static_cast<uint32_t>(product >> 32);
    lo = static_cast<uint32_t>(product);
}

// Philox4x32 with 10 rounds.
KILN_PHILOX_HD inline PhiloxBlock philox4x32_10(PhiloxBlock counter, uint32_t key0, uint32_t key1) {
    constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
    constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
    uint32_t* c = counter.v;
    for (int round = 0; round < 10; ++round) {
        uint32_t hi0, lo0, hi1, lo1;
        philox_mulhilo(kMul0, c[0], hi0, lo0);
        philox_mulhilo(kMul1, c[2], hi1, lo1);
        const uint32_t n0 = hi1 ^ c[1] ^ key0;
        const uint32_t n1 = lo1;
        const uint32_t n2 = hi0 ^ c[3] ^ key1;
        const uint32_t n3 = lo0;
        c[0] = n0;
        c[1] = n1;
        c[2] = n2;
        c[3] = n3;
        key0 += kWeyl0;
        key1 += kWeyl1;
    }
    return counter;
}

// Normal number j of (seed, image, stream); see the header comment.
KILN_PHILOX_HD inline float philox_normal(uint64_t seed,
                                          uint32_t image,
                                          uint32_t stream,
                                          uint64_t j) {
    const uint64_t pair = j / 2;
    const PhiloxBlock counter = {
        {static_cast<uint32_t>(pair), static_cast<uint32_t>(pair >> 32), image, stream}};
    const PhiloxBlock r =
        philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    const int w = static_cast<int>(j % 2) * 2;
    const double u1 = (static_cast<double>(r.v[w]) + 1.0) / 4294967296.0;
    const double u2 = static_cast<double>(r.v[w + 1]) / 4294967296.0;
    const double two_pi = 6.283185307179586476925286766559;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2));
}

}  // namespace kiln::engine::diffusion
