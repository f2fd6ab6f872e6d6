// 64-bit sizes and strides of the tensors the CUDA backend hands to cuDNN's legacy
// descriptors (which take 32-bit ints), pure C++ so the CPU tests cover shapes over 2^31
// elements. Every figure is computed in int64; a view whose figures do not fit is refused
// with a message before any descriptor is set, never truncated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "kernels/view_math.h"

namespace kiln::engine::cuda {

// A batch-1 NHWC view as cuDNN's NCHW-indexed dimensions and element strides: channel
// stride 1, pixel stride c_total (c for a dense [h, w, c] copy: `packed`).
struct CudnnViewDims {
    int64_t n = 1, c = 0, h = 0, w = 0;
    int64_t n_stride = 0, c_stride = 1, h_stride = 0, w_stride = 0;
};

inline CudnnViewDims cudnn_view_dims(const kernels::ViewDesc& v, bool packed) {
    CudnnViewDims d;
    const int64_t pixel = packed ? v.c : v.c_total;
    d.c = v.c;
    d.h = v.h;
    d.w = v.w;
    d.w_stride = pixel;
    d.h_stride = static_cast<int64_t>(v.w) * pixel;
    d.n_stride = static_cast<int64_t>(v.h) * d.h_stride;
    return d;
}

// Elements from the view's first to one past its last (what cuDNN addresses).
inline int64_t cudnn_view_span(const CudnnViewDims& d) {
    if (d.c == 0 || d.h == 0 || d.w == 0)
        return 0;
    return (d.h - 1) * d.h_stride + (d.w - 1) * d.w_stride + (d.c - 1) * d.c_stride + 1;
}

// cuDNN's legacy tensors: every dimension and stride an int, at most 2^31 - 1 elements.
inline bool cudnn_view_fits(const CudnnViewDims& d) {
    constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
    return d.c <= kMax && d.h <= kMax && d.w <= kMax && d.n_stride <= kMax && d.h_stride <= kMax &&
           d.w_stride <= kMax && cudnn_view_span(d) <= kMax;
}

// The error message for a view that does not fit (`what` names the tensor).
inline std::string cudnn_view_limit_message(const std::string& what, const CudnnViewDims& d) {
    return what + " " + std::to_string(d.h) + "x" + std::to_string(d.w) + "x" +
           std::to_string(d.c) + " spans " + std::to_string(d.n_stride) +
           " elements, over the 2147483647 that cuDNN's 32-bit tensor descriptors address; "
           "use smaller tiles";
}

// Bytes of an fp16 view's elements, or of a packed copy of it (int64 / size_t throughout).
inline size_t half_view_bytes(const kernels::ViewDesc& v) {
    return static_cast<size_t>(v.pixels()) * static_cast<size_t>(v.c) * sizeof(uint16_t);
}

}  // namespace kiln::engine::cuda
