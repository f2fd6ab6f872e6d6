#include "weights/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <climits>

#include "core/error.h"
#include "weights/byte_io.h"

namespace kiln::weights {

namespace {

using detail::load_le;

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22;
constexpr size_t kMaxEntries = 1'000'000;
// Deflate cannot expand data by more than ~1032:1; a larger claim is a lie.
constexpr uint64_t kMaxDeflateRatio = 1032;

}  // namespace

bool is_zip(std::span<const uint8_t> bytes) {
    return bytes.size() >= 4 && load_le<uint32_t>(bytes.data()) == kLocalSig;
}

ZipReader::ZipReader(std::span<const uint8_t> archive, std::string file_name)
    : archive_(archive), file_(std::move(file_name)) {
    parse_central_directory();
}

void ZipReader::parse_central_directory() {
    auto bad = [&](const std::string& what) {
        throw core::Error(core::ErrorCode::BAD_FILE, file_ + ": zip archive: " + what);
    };
    const size_t n = archive_.size();
    if (n < kEndSize)
        bad("too short for an end-of-central-directory record");
    // The end record sits in the last 22 + 65535 (comment) bytes.
    size_t end_pos = SIZE_MAX;
    const size_t lowest = n > kEndSize + 65535 ? n - kEndSize - 65535 : 0;
    for (size_t p = n - kEndSize + 1; p-- > lowest;) {
        if (load_le<uint32_t>(archive_.data() + p) == kEndSig) {
            end_pos = p;
            break;
        }
    }
    if (end_pos == SIZE_MAX)
        bad("no end-of-central-directory record");
    const uint8_t* e = archive_.data() + end_pos;
    uint64_t count = load_le<uint16_t>(e + 10);
    uint64_t cd_size = load_le<uint32_t>(e + 12);
    uint64_t cd_offset = load_le<uint32_t>(e + 16);
    if (count == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) {
        if (end_pos < 20)
            bad("zip64 locator missing");
        const uint8_t* loc = archive_.data() + end_pos - 20;
        if (load_le<uint32_t>(loc) != kZip64LocatorSig)
            bad("zip64 locator missing");
        const uint64_t z64 = load_le<uint64_t>(loc + 8);
        if (z64 > n || n - z64 < 56)
            bad("zip64 end record out of bounds");
        const uint8_t* z = archive_.data() + z64;
        if (load_le<uint32_t>(z) != kZip64EndSig)
            bad("bad zip64 end record signature");
        count = load_le<uint64_t>(z + 32);
        cd_size = load_le<uint64_t>(z + 40);
        cd_offset = load_le<uint64_t>(z + 48);
    }
    if (cd_offset > n || cd_size > n - cd_offset)
        bad("central directory out of bounds");
    if (count > kMaxEntries)
        bad("too many entries (" + std::to_string(count) + ")");
    size_t p = cd_offset;
    const size_t cd_end = cd_offset + cd_size;
    for (uint64_t i = 0; i < count; ++i) {
        if (cd_end - p < 46 || load_le<uint32_t>(archive_.data() + p) != kCentralSig) {
            bad("bad central directory entry " + std::to_string(i));
        }
        const uint8_t* c = archive_.data() + p;
        ZipEntry entry;
        entry.method = load_le<uint16_t>(c + 10);
        entry.crc32 = load_le<uint32_t>(c + 16);
        entry.compressed_size = load_le<uint32_t>(c + 20);
        entry.uncompressed_size = load_le<uint32_t>(c + 24);
        const size_t name_len = load_le<uint16_t>(c + 28);
        const size_t extra_len = load_le<uint16_t>(c + 30);
        const size_t comment_len = load_le<uint16_t>(c + 32);
        entry.local_header_offset = load_le<uint32_t>(c + 42);
        if (cd_end - p - 46 < name_len + extra_len + comment_len)
            bad("central directory entry overruns");
        entry.name.assign(reinterpret_cast<const char*>(c + 46), name_len);
        // zip64 extra field: the 0xffffffff fields, in order, as 8-byte values.
        const uint8_t* x = c + 46 + name_len;
        const uint8_t* x_end = x + extra_len;
        while (x_end - x >= 4) {
            const uint16_t id = load_le<uint16_t>(x);
            const uint16_t len = load_le<uint16_t>(x + 2);
            if (x_end - x - 4 < len)
                bad("extra field overruns in '" + entry.name + "'");
            if (id == 0x0001) {
                const uint8_t* f = x + 4;
                const uint8_t* f_end = f + len;
                auto take = [&](uint64_t& field) {
                    if (field != 0xffffffff)
                        return;
                    if (f_end - f < 8)
                        bad("short zip64 extra field in '" + entry.name + "'");
                    field = load_le<uint64_t>(f);
                    f += 8;
                };
                take(entry.uncompressed_size);
                take(entry.compressed_size);
                take(entry.local_header_offset);
            }
            x += 4 + len;
        }
        if (entry.local_header_offset > n || entry.compressed_size > n) {
            bad("entry '" + entry.name + "' lies outside the archive");
        }
        entries_.push_back(std::move(entry));
        p += 46 + name_len + extra_len + comment_len;
    }
}

const ZipEntry* ZipReader::find(std::string_view name) const {
    for (const ZipEntry& e : entries_) {
        if (e.name == name)
            return &e;
    }
    return nullptr;
}

std::span<const uint8_t> ZipReader::read(const ZipEntry& entry,
                                         std::vector<uint8_t>& scratch) const {
    auto bad = [&](const std::string& what) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          file_ + ": zip entry '" + entry.name + "': " + what);
    };
    const size_t n = archive_.size();
    const uint64_t h = entry.local_header_offset;
    if (h > n || n - h < 30 || load_le<uint32_t>(archive_.data() + h) != kLocalSig) {
        bad("bad local header");
    }
    const uint64_t data_pos = h + 30 + load_le<uint16_t>(archive_.data() + h + 26) +
                              load_le<uint16_t>(archive_.data() + h + 28);
    if (data_pos > n || entry.compressed_size > n - data_pos) {
        bad("data (" + std::to_string(entry.compressed_size) +
            " bytes) runs past the end of the file");
    }
    const auto raw = archive_.subspan(data_pos, entry.compressed_size);
    std::span<const uint8_t> out;
    if (entry.method == 0) {
        if (entry.uncompressed_size != entry.compressed_size)
            bad("stored entry with two sizes");
        out = raw;
    } else if (entry.method == 8) {
        if (entry.uncompressed_size > entry.compressed_size * kMaxDeflateRatio + 1024 ||
            entry.uncompressed_size > UINT32_MAX * 16ull) {
            bad("claims " + std::to_string(entry.uncompressed_size) + " bytes from " +
                std::to_string(entry.compressed_size) + " compressed");
        }
        scratch.resize(entry.uncompressed_size);
        z_stream zs{};
        if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
            bad("zlib init failed");
        size_t in_done = 0;
        size_t out_done = 0;
        int rc = Z_OK;
        // zlib counts in uInt; feed in chunks so entries over 4 GiB also work.
        while (rc == Z_OK) {
            const size_t in_chunk = std::min<size_t>(raw.size() - in_done, UINT_MAX);
            const size_t out_chunk = std::min<size_t>(scratch.size() - out_done, UINT_MAX);
            zs.next_in = const_cast<Bytef*>(raw.data() + in_done);
            zs.avail_in = static_cast<uInt>(in_chunk);
            zs.next_out = scratch.data() + out_done;
            zs.avail_out = static_cast<uInt>(out_chunk);
            rc = inflate(&zs, Z_NO_FLUSH);
            in_done += in_chunk - zs.avail_in;
            out_done += out_chunk - zs.avail_out;
            if (rc == Z_OK && zs.avail_in == in_chunk && zs.avail_out == out_chunk)
                break;
        }
        inflateEnd(&zs);
        if (rc != Z_STREAM_END || out_done != scratch.size()) {
            bad("deflate data is corrupt or its size differs from the directory");
        }
        out = std::span<const uint8_t>(scratch);
    } else {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          file_ + ": zip entry '" + entry.name + "' uses compression method " +
                              std::to_string(entry.method) + " (only stored, deflate)");
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < out.size(); off += UINT_MAX) {
        const size_t len = std::min<size_t>(out.size() - off, UINT_MAX);
        crc = crc32(crc, out.data() + off, static_cast<uInt>(len));
    }
    if (crc != entry.crc32)
        bad("CRC-32 mismatch (file corrupt)");
    return out;
}

}  // namespace kiln::weights
