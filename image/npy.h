// Minimal NumPy .npy files (format versions 1 and 2): little-endian float32 ("<f4") and
// uint8 ("|u1") arrays in C order. Used for test fixtures and reference outputs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace kiln::image {

struct NpyArray {
    std::vector<int64_t> shape;  // empty: a scalar
    std::string dtype;           // "<f4" or "|u1"
    std::vector<uint8_t> bytes;  // C order, little-endian

    int64_t element_count() const;
    // INVALID_ARGUMENT when dtype is not the one asked for.
    std::vector<float> as_f32() const;
    std::vector<uint8_t> as_u8() const;

    // INVALID_ARGUMENT when the shape does not match data.size().
    static NpyArray from_f32(std::vector<int64_t> shape, std::span<const float> data);
    static NpyArray from_u8(std::vector<int64_t> shape, std::span<const uint8_t> data);
};

// BAD_FILE for a malformed file (magic, header, size), UNSUPPORTED for a well-formed one that
// kiln does not read (other dtypes, Fortran order, format version 3).
NpyArray npy_parse(std::span<const uint8_t> bytes);
std::vector<uint8_t> npy_serialize(const NpyArray& array);

NpyArray read_npy(const std::filesystem::path& path);
void write_npy(const std::filesystem::path& path, const NpyArray& array);  // atomic

}  // namespace kiln::image
