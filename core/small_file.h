// Reading a small file whole (a model's config.json, a scheduler config) with a size cap, so
// a huge or hostile file named like a config is refused before it is read into memory.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace kiln::core {

inline constexpr size_t kSmallFileMaxBytes = size_t{1} << 20;  // 1 MiB

// The file's bytes. Throws core::Error naming the path: IO when it cannot be opened or read,
// BAD_FILE when it is larger than max_bytes.
std::string read_small_file(const std::filesystem::path& path,
                            size_t max_bytes = kSmallFileMaxBytes);

}  // namespace kiln::core
