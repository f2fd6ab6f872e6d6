// Where element (y, x, c) of a value lives in its buffer on the CPU backend.
//
// A buffer is either plain NHWC or channel-blocked ([ceil(c/V)][h][w][V], oneDNN's
// nChw16c/nChw8c, the last block zero-padded) when all its channel views start on a block;
// a buffer of fewer channels than a block that a convolution reads is planar NCHW instead.
// With batch 1, a block-aligned channel slice of a blocked buffer is one contiguous range
// that is itself a valid blocked tensor, so dense blocks concatenate for free and oneDNN's
// fast kernels read the slices directly. Padding channels always hold zeros: oneDNN's
// kernels read them (against zero weights) and every op writing a padded view clears them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::engine::cpu {

struct ViewLayout {
    int h = 0, w = 0, c = 0;  // the view's shape
    int c_total = 0;          // channels of the whole buffer
    int c_offset = 0;         // first channel of the view in the buffer
    int block = 0;            // V for a blocked buffer, 0 for NHWC or planar
    bool planar = false;      // NCHW: what oneDNN's fast kernels want for a first layer

    bool blocked() const { return block > 0; }
    // Channels including the zero padding of the last block (blocked views only).
    int padded_c() const { return blocked() ? (c + block - 1) / block * block : c; }
    bool has_padding() const { return padded_c() != c; }
    int64_t pixels() const { return static_cast<int64_t>(h) * w; }
    // Floats between the same channel of neighbouring pixels.
    int64_t pixel_stride() const { return blocked() ? block : planar ? 1 : c_total; }
    // Float offset of channel ch of pixel 0.
    int64_t channel_offset(int ch) const {
        const int64_t cc = c_offset + ch;
        if (planar)
            return cc * pixels();
        if (!blocked())
            return cc;
        return (cc / block) * pixels() * block + cc % block;
    }
    int64_t offset(int y, int x, int ch) const {
        return (static_cast<int64_t>(y) * w + x) * pixel_stride() + channel_offset(ch);
    }
    // Offset of the view's first float (where a oneDNN memory for the view starts).
    int64_t base_offset() const {
        return blocked() || planar ? int64_t{c_offset} * h * w : c_offset;
    }
    std::vector<int64_t> channel_offsets() const {
        std::vector<int64_t> offsets(static_cast<size_t>(c));
        for (int ch = 0; ch < c; ++ch)
            offsets[static_cast<size_t>(ch)] = channel_offset(ch);
        return offsets;
    }
};

// Bytes of a buffer of c channels; block 0 for NHWC.
inline size_t buffer_bytes(int h, int w, int c, int block) {
    const int padded = block > 0 ? (c + block - 1) / block * block : c;
    return static_cast<size_t>(h) * static_cast<size_t>(w) * static_cast<size_t>(padded) *
           sizeof(float);
}

}  // namespace kiln::engine::cpu
