// Minimal read-only zip archive reader for torch.save files: central directory (zip64 too),
// STORED and DEFLATE entries, every offset and size bounded by the archive size.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::weights {

struct ZipEntry {
    std::string name;
    uint16_t method = 0;  // 0 stored, 8 deflate
    uint32_t crc32 = 0;
    uint64_t compressed_size = 0;
    uint64_t uncompressed_size = 0;
    uint64_t local_header_offset = 0;
};

class ZipReader {
  public:
    // `archive` must outlive the reader; `file_name` is used in error messages.
    // Throws core::Error(BAD_FILE) when the central directory is missing or inconsistent.
    ZipReader(std::span<const uint8_t> archive, std::string file_name);

    const std::vector<ZipEntry>& entries() const { return entries_; }
    const ZipEntry* find(std::string_view name) const;

    // The entry's uncompressed bytes: a view into the archive for STORED entries, else a view
    // into `scratch` (inflated). CRC-checked.
    std::span<const uint8_t> read(const ZipEntry& entry, std::vector<uint8_t>& scratch) const;

  private:
    void parse_central_directory();

    std::span<const uint8_t> archive_;
    std::string file_;
    std::vector<ZipEntry> entries_;
};

// True when the bytes start with a zip local file header ("PK\3\4").
bool is_zip(std::span<const uint8_t> bytes);

}  // namespace kiln::weights
