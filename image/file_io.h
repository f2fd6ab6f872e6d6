// Whole-file reads and atomic writes for image and array files. Internal to kiln_image.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace kiln::image {

// NOT_FOUND when absent, TOO_LARGE over max_bytes, IO otherwise.
std::vector<uint8_t> file_read_bytes(const std::filesystem::path& path, int64_t max_bytes);

// Writes a temporary file beside `path`, fsyncs it and renames it over `path`, so readers see
// the old file or the complete new one, never a partial one. IO on failure (no temp is left).
void file_write_atomic(const std::filesystem::path& path, std::span<const uint8_t> bytes);

}  // namespace kiln::image
