// Where a CUDA plan runs each convolution, pure C++ so the CPU tests cover it: cuBLASLt or
// cuDNN, the cuBLASLt workspace, and (for cuDNN) whether a convolution over channel views
// reads and writes them in place through strided descriptors or through packed copies.
#pragma once

#include <cstddef>

#include "kernels/view_math.h"

namespace kiln::engine::cuda {

enum class ConvRoute { CUBLASLT, CUDNN };

struct ConvRouteQuery {
    int kernel = 3;
    int stride = 1;
    int pad = 0;     // ConvWeights::padding()
    int groups = 1;  // ConvWeights::groups: a grouped convolution is no single GEMM
    kernels::ViewDesc src, dst;
    bool cublaslt_enabled = true;  // CudaBackendOptions::cublaslt_linear
    bool cublaslt_ready = true;    // the context has a cuBLASLt handle
};

// cuBLASLt takes every 1x1, stride-1, unpadded convolution whose input and output are whole
// buffers (a GEMM over the pixels: the UNet's transformer linears on [h, w, c] maps,
// shortcuts), and token sequences ([L, 1, c], whose channel views are matrices with a leading
// dimension).
// Everything else goes to cuDNN (grouped and depthwise convolutions always: cuDNN's group
// count is the only path that honours groups); so does a convolution cuBLASLt refuses when it
// is built.
inline ConvRoute conv_route(const ConvRouteQuery& q) {
    if (!q.cublaslt_enabled || !q.cublaslt_ready || q.kernel != 1 || q.stride != 1 || q.pad != 0 ||
        q.groups != 1)
        return ConvRoute::CUDNN;
    if (q.src.pixels() != q.dst.pixels() || q.src.pixels() == 0)
        return ConvRoute::CUDNN;
    const bool whole = q.src.packed() && q.dst.packed();
    const bool tokens = q.src.w == 1 && q.dst.w == 1;
    return whole || tokens ? ConvRoute::CUBLASLT : ConvRoute::CUDNN;
}

// cuBLASLt's workspace, allocated once per plan that has a cuBLASLt convolution: NVIDIA's
// recommendation (32 MiB on Hopper and later, 4 MiB before), `requested` when set
// (CudaBackendOptions::cublaslt_workspace), never over the plan's workspace limit.
inline size_t cublaslt_workspace_bytes(int cc_major, size_t requested, size_t limit) {
    const size_t recommended = cc_major >= 9 ? size_t{32} << 20 : size_t{4} << 20;
    const size_t bytes = requested != 0 ? requested : recommended;
    return bytes < limit ? bytes : limit;
}

enum class ConvViewPath {
    STRIDED,  // cuDNN reads and writes the channel views in place
    PACKED,   // copy the input view to a dense scratch, convolve, write back in the epilogue
};

// Which path a plan asks for (CudaBackendOptions::conv_views): CHOOSE decides, STRIDED and
// PACKED force one (tests and benchmarks compare them).
enum class ConvViewChoice { CHOOSE, STRIDED, PACKED };

// The paths a cuDNN convolution builds at plan time, and whether it times them against each
// other. CHOOSE (the default) builds both when a view is a channel slice and times them, whole
// op, copies included, whatever the algorithm search: which is faster depends on the device,
// the channel counts and the slice's alignment, so it is measured, not guessed. Whole buffers
// need no copies: one path. Whatever is planned, a convolution whose planned path finds no
// algorithm falls back to the other.
struct ConvViewPlan {
    bool strided = true;
    bool packed = false;
    bool time_both = false;
};

inline ConvViewPlan conv_view_plan(ConvViewChoice choice,
                                   const kernels::ViewDesc& src,
                                   const kernels::ViewDesc& dst) {
    if (src.packed() && dst.packed())
        return {true, false, false};
    switch (choice) {
        case ConvViewChoice::STRIDED:
            return {true, false, false};
        case ConvViewChoice::PACKED:
            return {false, true, false};
        case ConvViewChoice::CHOOSE:
            break;
    }
    return {true, true, true};
}

// The path kept from the two measured times (milliseconds per run of the whole op, copies
// and epilogue included; negative: that path did not run). Ties keep the strided views,
// which need no scratch; so does a pair of failed measurements.
inline ConvViewPath pick_conv_view_path(float strided_ms, float packed_ms) {
    if (strided_ms < 0.0f)
        return packed_ms < 0.0f ? ConvViewPath::STRIDED : ConvViewPath::PACKED;
    if (packed_ms < 0.0f)
        return ConvViewPath::STRIDED;
    return packed_ms < strided_ms ? ConvViewPath::PACKED : ConvViewPath::STRIDED;
}

}  // namespace kiln::engine::cuda
