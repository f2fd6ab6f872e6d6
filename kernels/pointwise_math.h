// Per-element math of the epilogue and image I/O kernels (host-device, CPU-tested).
#pragma once

#include <cmath>
#include <cstdint>

#include "core/half.h"

namespace kiln::kernels {

// Same values as engine::Activation (the backend casts one to the other).
enum class Act : int {
    NONE = 0,
    RELU = 1,
    LEAKY_RELU = 2,
    PRELU = 3,
    SILU = 4,
    GELU = 5,
    SIGMOID = 6
};

// 1 / (1 + exp(-x)): exp overflows to inf below x = -88 and the result is 0, never NaN.
KILN_HD inline float sigmoid(float v) {
    return 1.0f / (1.0f + expf(-v));
}

// x * sigmoid(x)
KILN_HD inline float silu(float v) {
    return v / (1.0f + expf(-v));
}

// The exact (erf) GELU, as PyTorch's F.gelu: 0.5 x (1 + erf(x / sqrt(2))).
KILN_HD inline float gelu(float v) {
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
}

// slope: alpha for LEAKY_RELU, the channel's slope for PRELU.
KILN_HD inline float activate(float v, Act act, float slope) {
    switch (act) {
        case Act::NONE:
            return v;
        case Act::RELU:
            return v > 0.0f ? v : 0.0f;
        case Act::LEAKY_RELU:
        case Act::PRELU:
            return v > 0.0f ? v : v * slope;
        case Act::SILU:
            return silu(v);
        case Act::GELU:
            return gelu(v);
        case Act::SIGMOID:
            return sigmoid(v);
    }
    return v;
}

// uint8 sample -> model value: v / 255 * scale + offset (scale 1, offset 0: [0, 1]).
KILN_HD inline float u8_to_value(uint8_t v, float scale, float offset) {
    return static_cast<float>(v) * (1.0f / 255.0f) * scale + offset;
}

// Model value -> uint8: undo the normalisation, clamp to [0, 1], floor(v * 255 + 0.5).
// NaN maps to 0.
KILN_HD inline uint8_t value_to_u8(float v, float scale, float offset) {
    float u = (v - offset) / scale;
    u = u > 0.0f ? (u < 1.0f ? u : 1.0f) : 0.0f;  // NaN fails v > 0 and becomes 0
    return static_cast<uint8_t>(floorf(u * 255.0f + 0.5f));
}

// fp32 -> fp16 storage -> fp32, what every kernel store then load does to a value.
KILN_HD inline float round_half(float v) {
    return core::half_to_float(core::float_to_half(v));
}

}  // namespace kiln::kernels
