// Little-endian loads from unaligned bytes, checked element conversion to fp32, and
// overflow-checked size arithmetic shared by the readers (internal to weights/).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "core/half.h"
#include "weights/state_dict.h"

namespace kiln::weights::detail {

template <typename T>
T load_le(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);  // the project targets little-endian hosts only
    return v;
}

inline size_t dtype_size(StorageDType dtype) {
    return dtype == StorageDType::F32 ? 4 : 2;
}

// a * b, or nullopt on overflow of int64 (both non-negative).
inline std::optional<int64_t> checked_mul(int64_t a, int64_t b) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        return std::nullopt;
    return r;
}

// Product of dims, or nullopt when a dim is negative or the product overflows.
inline std::optional<int64_t> checked_numel(std::span<const int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        auto r = checked_mul(n, d);
        if (!r)
            return std::nullopt;
        n = *r;
    }
    return n;
}

// Converts `count` stored elements starting at `src` to fp32 (caller checked the bounds).
inline void convert_to_f32(const uint8_t* src, size_t count, StorageDType dtype, float* dst) {
    switch (dtype) {
        case StorageDType::F32:
            std::memcpy(dst, src, count * 4);
            break;
        case StorageDType::F16:
            for (size_t i = 0; i < count; ++i)
                dst[i] = core::half_to_float(load_le<uint16_t>(src + 2 * i));
            break;
        case StorageDType::BF16:
            for (size_t i = 0; i < count; ++i)
                dst[i] = core::bf16_to_float(load_le<uint16_t>(src + 2 * i));
            break;
    }
}

}  // namespace kiln::weights::detail
