#include "core/small_file.h"

#include <fstream>
#include <string>

#include "core/error.h"

namespace kiln::core {

namespace {

std::string size_text(size_t bytes) {
    constexpr size_t kMiB = size_t{1} << 20;
    return bytes % kMiB == 0 ? std::to_string(bytes / kMiB) + " MiB"
                             : std::to_string(bytes) + " bytes";
}

}  // namespace

std::string read_small_file(const std::filesystem::path& path, size_t max_bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw Error(ErrorCode::IO, path.string() + ": cannot open");
    // The size first, so a large file is refused without reading it.
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0)
        throw Error(ErrorCode::IO, path.string() + ": cannot tell its size");
    if (static_cast<size_t>(size) > max_bytes)
        throw Error(ErrorCode::BAD_FILE, path.string() + ": larger than " + size_text(max_bytes));
    in.seekg(0);
    std::string text(static_cast<size_t>(size), '\0');
    if (!in.read(text.data(), size))
        throw Error(ErrorCode::IO, path.string() + ": cannot read");
    return text;
}

}  // namespace kiln::core
