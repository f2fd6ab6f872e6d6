// Index maps of NHWC channel views and the launch shapes of the elementwise kernels, shared by
// the CUDA kernels and the CPU tests (tests/kernels). Pure C++: no CUDA header is needed.
//
// A view covers channels [c_offset, c_offset + c) of an NHWC buffer of c_total channels, batch
// 1: element (y, x, ch) lives at ((y * w + x) * c_total + c_offset + ch).
#pragma once

#include <cstdint>

#include "core/half.h"  // KILN_HD

namespace kiln::kernels {

KILN_HD inline int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

struct ViewDesc {
    int h = 0, w = 0, c = 0;
    int c_total = 0;
    int c_offset = 0;

    KILN_HD int64_t pixels() const { return static_cast<int64_t>(h) * w; }
    KILN_HD int64_t offset(int y, int x, int ch) const {
        return (static_cast<int64_t>(y) * w + x) * c_total + c_offset + ch;
    }
    KILN_HD int64_t pixel_offset(int64_t p, int ch) const { return p * c_total + c_offset + ch; }
    // The view is the whole buffer: its elements are one contiguous run.
    KILN_HD bool packed() const { return c_offset == 0 && c == c_total; }
};

// A view of an fp16 buffer (device memory in the kernels, host memory in the CPU tests):
// `data` is the buffer's first element.
struct DeviceView {
    uint16_t* data = nullptr;
    ViewDesc desc;
};

// 128-bit vectors of fp16: 8 elements.
inline constexpr int kHalfVector = 8;

// How an elementwise kernel walks a set of same-shaped views: `rows` rows of `row_len`
// elements (a row is one pixel's channels, or the whole view when every view is packed);
// each row is `chunks_per_row` vectors of `vec` elements, then `tail` scalar elements
// (a tail only exists when there is one row).
struct VecPlan {
    int64_t rows = 0;
    int64_t row_len = 0;
    int64_t chunks_per_row = 0;
    int vec = 1;
    int tail = 0;

    KILN_HD int64_t chunks() const { return rows * chunks_per_row; }
    // Element index of vector chunk k inside its row, and its row.
    KILN_HD int64_t chunk_row(int64_t k) const { return k / chunks_per_row; }
    KILN_HD int64_t chunk_col(int64_t k) const { return (k % chunks_per_row) * vec; }
    KILN_HD int64_t tail_start() const { return chunks_per_row * vec; }
};

// Whether a view can be read with `vec`-wide aligned loads given its buffer's address:
// channel offset, stride and (for per-pixel rows) width all multiples of vec, and the buffer
// aligned to vec * 2 bytes.
inline bool view_vectorizable(const ViewDesc& v, uintptr_t buffer_address, int vec, bool flat) {
    if (buffer_address % (static_cast<uintptr_t>(vec) * 2u) != 0)
        return false;
    if (flat)
        return true;  // packed, element 0 aligned; the tail is scalar
    return v.c % vec == 0 && v.c_offset % vec == 0 && v.c_total % vec == 0;
}

// A plan for views of the same shape: flat (one row) when all are packed (and rows are not
// forced), else one row per pixel; vectors of kHalfVector when every view allows them.
// Broadcast operands (a [1, 1, c] view added to every pixel) force rows and are passed
// among `views` for the vector check only: their row is always pixel 0.
inline VecPlan plan_vectors(const ViewDesc* views,
                            const uintptr_t* addresses,
                            int count,
                            bool force_rows = false) {
    bool flat = !force_rows;
    for (int i = 0; i < count; ++i)
        flat = flat && views[i].packed();
    const ViewDesc& v0 = views[0];
    VecPlan plan;
    plan.rows = flat ? 1 : v0.pixels();
    plan.row_len = flat ? v0.pixels() * v0.c : v0.c;
    bool vectorize = plan.row_len >= kHalfVector;
    for (int i = 0; i < count && vectorize; ++i)
        vectorize = view_vectorizable(views[i], addresses[i], kHalfVector, flat);
    plan.vec = vectorize ? kHalfVector : 1;
    plan.chunks_per_row = plan.row_len / plan.vec;
    plan.tail = static_cast<int>(plan.row_len % plan.vec);
    return plan;
}

// Element offset of (row, col) of a plan in a view: rows are pixels, or one flat run.
KILN_HD inline int64_t plan_offset(const ViewDesc& v,
                                   const VecPlan& plan,
                                   int64_t row,
                                   int64_t col) {
    return plan.rows == 1 && v.packed() ? col : v.pixel_offset(row, static_cast<int>(col));
}

// Channel of (row, col) (bias and PReLU slopes are per channel).
KILN_HD inline int plan_channel(const ViewDesc& v, const VecPlan& plan, int64_t col) {
    return plan.rows == 1 && v.packed() ? static_cast<int>(col % v.c) : static_cast<int>(col);
}

// A 1-D launch: blocks of `block` threads covering `work` items, capped at `max_blocks`
// (the kernels loop grid-stride past the cap). Zero work launches nothing.
struct Launch1D {
    unsigned grid = 0;
    unsigned block = 0;
};

inline Launch1D launch_1d(int64_t work, int block, int64_t max_blocks) {
    Launch1D l;
    if (work <= 0)
        return l;
    l.block = static_cast<unsigned>(block);
    const int64_t blocks = ceil_div(work, block);
    l.grid = static_cast<unsigned>(blocks < max_blocks ? blocks : max_blocks);
    return l;
}

// The byte alignment cuBLASLt may assume (kernels/linear.h) for a matrix at `address` whose columns
// are `ld` halves apart: the largest power of two (<= 256) dividing both.
inline uint32_t linear_alignment(uintptr_t address, int64_t ld) {
    uint32_t a = 256;
    const uintptr_t col_bytes = static_cast<uintptr_t>(ld) * 2u;
    while (a > 2 && (address % a != 0 || col_bytes % a != 0))
        a /= 2;
    return a;
}

// Grid cap: enough blocks to fill any current GPU (132 SMs x 16 resident blocks of 256).
inline constexpr int64_t kMaxBlocks = 65535;

}  // namespace kiln::kernels
