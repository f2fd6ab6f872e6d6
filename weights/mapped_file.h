// Read-only memory map of a whole file (RAII). Readers take byte spans from it and never
// trust a size found inside the file before comparing it with size().
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace kiln::weights {

class MappedFile {
  public:
    // Throws core::Error(NOT_FOUND) when the file is missing, core::Error(IO) when it cannot be
    // mapped.
    explicit MappedFile(const std::filesystem::path& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const uint8_t> bytes() const { return {data_, size_}; }
    size_t size() const { return size_; }

  private:
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    bool mapped_ = false;
};

}  // namespace kiln::weights
