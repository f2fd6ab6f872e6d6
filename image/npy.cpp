// .npy reading and writing: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
#include "image/npy.h"

#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "image/file_io.h"

namespace kiln::image {

// Samples are copied as stored; a big-endian host would need byte swaps here.
static_assert(std::endian::native == std::endian::little, "npy I/O assumes a little-endian host");

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kMaxHeaderBytes = 1 << 16;  // numpy itself refuses more than 10000 by default
constexpr int64_t kMaxFileBytes = int64_t{1} << 34;

[[noreturn]] void npy_bad(const std::string& what) {
    throw core::Error(core::ErrorCode::BAD_FILE, "malformed .npy: " + what);
}

int64_t npy_item_size(const std::string& dtype) {
    if (dtype == "<f4") {
        return 4;
    }
    if (dtype == "|u1") {
        return 1;
    }
    return 0;
}

// INVALID_ARGUMENT (caller's data) or BAD_FILE (file) when a dimension is negative or the
// element count overflows.
std::optional<int64_t> npy_checked_count(const std::vector<int64_t>& shape) {
    int64_t count = 1;
    for (const int64_t dim : shape) {
        if (dim < 0 || (dim > 0 && count > std::numeric_limits<int64_t>::max() / dim)) {
            return std::nullopt;
        }
        count *= dim;
    }
    return count;
}

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// This parser accepts exactly what numpy writes: string keys, and string, bool or
// integer-tuple values.
class NpyHeaderParser {
  public:
    explicit NpyHeaderParser(std::string_view text) : text_(text) {}

    void parse(NpyArray& array) {
        bool have_descr = false, have_order = false, have_shape = false;
        expect('{');
        while (!accept('}')) {
            const std::string key = parse_string();
            expect(':');
            if (key == "descr" && !have_descr) {
                array.dtype = parse_string();
                have_descr = true;
            } else if (key == "fortran_order" && !have_order) {
                if (parse_bool()) {
                    throw core::Error(core::ErrorCode::UNSUPPORTED,
                                      ".npy in Fortran order is not supported");
                }
                have_order = true;
            } else if (key == "shape" && !have_shape) {
                array.shape = parse_shape();
                have_shape = true;
            } else {
                npy_bad("unexpected or repeated header key '" + key + "'");
            }
            if (!accept(',')) {
                expect('}');
                break;
            }
        }
        skip_space();
        if (pos_ != text_.size()) {
            npy_bad("trailing characters after the header dict");
        }
        if (!have_descr || !have_order || !have_shape) {
            npy_bad("header lacks descr, fortran_order or shape");
        }
    }

  private:
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n')) {
            ++pos_;
        }
    }
    bool accept(char c) {
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!accept(c)) {
            npy_bad(std::string("expected '") + c + "' at header offset " + std::to_string(pos_));
        }
    }
    std::string parse_string() {
        skip_space();
        if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
            npy_bad("expected a string at header offset " + std::to_string(pos_));
        }
        const char quote = text_[pos_++];
        const size_t end = text_.find(quote, pos_);
        if (end == std::string_view::npos) {
            npy_bad("unterminated string in header");
        }
        std::string value(text_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return value;
    }
    bool parse_bool() {
        skip_space();
        for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
            const std::string_view w(word);
            if (text_.substr(pos_, w.size()) == w) {
                pos_ += w.size();
                return value;
            }
        }
        npy_bad("expected True or False at header offset " + std::to_string(pos_));
    }
    int64_t parse_dim() {
        skip_space();
        const size_t start = pos_;
        int64_t value = 0;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
            const int digit = text_[pos_] - '0';
            if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) {
                npy_bad("dimension overflows int64");
            }
            value = value * 10 + digit;
            ++pos_;
        }
        if (pos_ == start) {
            npy_bad("expected a dimension at header offset " + std::to_string(pos_));
        }
        return value;
    }
    std::vector<int64_t> parse_shape() {
        std::vector<int64_t> shape;
        expect('(');
        while (!accept(')')) {
            shape.push_back(parse_dim());
            if (shape.size() > 32) {
                npy_bad("more than 32 dimensions");
            }
            if (!accept(',')) {
                expect(')');
                break;
            }
        }
        return shape;
    }

    std::string_view text_;
    size_t pos_ = 0;
};

uint32_t npy_read_le(std::span<const uint8_t> bytes, size_t offset, size_t width) {
    uint32_t value = 0;
    for (size_t i = 0; i < width; ++i) {
        value |= static_cast<uint32_t>(bytes[offset + i]) << (8 * i);
    }
    return value;
}

std::string npy_shape_text(const std::vector<int64_t>& shape) {
    std::string text = "(";
    for (size_t i = 0; i < shape.size(); ++i) {
        text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
    }
    return text + (shape.size() == 1 ? ",)" : ")");
}

template <typename T>
NpyArray npy_from(std::vector<int64_t> shape, std::span<const T> data, const char* dtype) {
    const std::optional<int64_t> count = npy_checked_count(shape);
    if (!count || static_cast<uint64_t>(*count) != data.size()) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "npy shape " + npy_shape_text(shape) + " does not hold " +
                              std::to_string(data.size()) + " elements");
    }
    NpyArray array{.shape = std::move(shape), .dtype = dtype, .bytes = {}};
    array.bytes.resize(data.size_bytes());
    if (!data.empty()) {
        std::memcpy(array.bytes.data(), data.data(), data.size_bytes());
    }
    return array;
}

template <typename T>
std::vector<T> npy_as(const NpyArray& array, const char* dtype) {
    if (array.dtype != dtype) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "npy array has dtype " + array.dtype + ", not " + dtype);
    }
    std::vector<T> values(array.bytes.size() / sizeof(T));
    if (!values.empty()) {
        std::memcpy(values.data(), array.bytes.data(), values.size() * sizeof(T));
    }
    return values;
}

}  // namespace

int64_t NpyArray::element_count() const {
    return npy_checked_count(shape).value_or(0);
}

std::vector<float> NpyArray::as_f32() const {
    return npy_as<float>(*this, "<f4");
}

std::vector<uint8_t> NpyArray::as_u8() const {
    return npy_as<uint8_t>(*this, "|u1");
}

NpyArray NpyArray::from_f32(std::vector<int64_t> shape, std::span<const float> data) {
    return npy_from(std::move(shape), data, "<f4");
}

NpyArray NpyArray::from_u8(std::vector<int64_t> shape, std::span<const uint8_t> data) {
    return npy_from(std::move(shape), data, "|u1");
}

NpyArray npy_parse(std::span<const uint8_t> bytes) {
    if (bytes.size() < kMagic.size() + 2 ||
        std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) {
        npy_bad("missing the \\x93NUMPY magic");
    }
    const uint8_t major = bytes[kMagic.size()];
    const uint8_t minor = bytes[kMagic.size() + 1];
    if ((major != 1 && major != 2) || minor != 0) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          ".npy format version " + std::to_string(major) + "." +
                              std::to_string(minor) + " is not supported");
    }
    const size_t length_width = major == 1 ? 2 : 4;
    const size_t prefix = kMagic.size() + 2 + length_width;
    if (bytes.size() < prefix) {
        npy_bad("truncated before the header length");
    }
    const size_t header_length = npy_read_le(bytes, kMagic.size() + 2, length_width);
    if (header_length > kMaxHeaderBytes) {
        npy_bad("header of " + std::to_string(header_length) + " bytes (limit " +
                std::to_string(kMaxHeaderBytes) + ")");
    }
    if (bytes.size() - prefix < header_length) {
        npy_bad("truncated inside the header");
    }

    NpyArray array;
    const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + prefix,
                                  header_length);
    NpyHeaderParser(header).parse(array);
    if (array.dtype == "<u1") {
        array.dtype = "|u1";  // same bytes; some writers spell it with a byte order
    }
    const int64_t item_size = npy_item_size(array.dtype);
    if (item_size == 0) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          ".npy dtype '" + array.dtype + "' is not supported (only <f4 and |u1)");
    }
    const std::optional<int64_t> count = npy_checked_count(array.shape);
    const uint64_t data_size = bytes.size() - prefix - header_length;
    if (!count || static_cast<uint64_t>(*count) > data_size / static_cast<uint64_t>(item_size) ||
        static_cast<uint64_t>(*count * item_size) != data_size) {
        npy_bad("shape " + npy_shape_text(array.shape) + " of " + array.dtype + " needs a " +
                "different data size than the " + std::to_string(data_size) + " bytes present");
    }
    array.bytes.assign(bytes.begin() + static_cast<ptrdiff_t>(prefix + header_length), bytes.end());
    return array;
}

std::vector<uint8_t> npy_serialize(const NpyArray& array) {
    const int64_t item_size = npy_item_size(array.dtype);
    const std::optional<int64_t> count = npy_checked_count(array.shape);
    if (item_size == 0) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "cannot write npy dtype '" + array.dtype + "'");
    }
    if (!count || static_cast<uint64_t>(*count) != array.bytes.size() / item_size ||
        array.bytes.size() % static_cast<size_t>(item_size) != 0) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "npy shape " + npy_shape_text(array.shape) + " does not match " +
                              std::to_string(array.bytes.size()) + " bytes of " + array.dtype);
    }
    std::string header = "{'descr': '" + array.dtype +
                         "', 'fortran_order': False, 'shape': " + npy_shape_text(array.shape) +
                         ", }";
    // numpy pads with spaces and a final newline so that the data starts 64-byte aligned.
    const size_t length_width = header.size() + kMagic.size() + 2 + 2 + 1 <= 65535 ? 2 : 4;
    const size_t prefix = kMagic.size() + 2 + length_width;
    const size_t padded = (prefix + header.size() + 1 + 63) / 64 * 64 - prefix;
    header.append(padded - header.size() - 1, ' ');
    header.push_back('\n');

    std::vector<uint8_t> out(prefix + header.size() + array.bytes.size());
    std::memcpy(out.data(), kMagic.data(), kMagic.size());
    out[kMagic.size()] = length_width == 2 ? 1 : 2;
    out[kMagic.size() + 1] = 0;
    for (size_t i = 0; i < length_width; ++i) {
        out[kMagic.size() + 2 + i] = static_cast<uint8_t>(header.size() >> (8 * i));
    }
    std::memcpy(out.data() + prefix, header.data(), header.size());
    if (!array.bytes.empty()) {
        std::memcpy(out.data() + prefix + header.size(), array.bytes.data(), array.bytes.size());
    }
    return out;
}

NpyArray read_npy(const std::filesystem::path& path) {
    const std::vector<uint8_t> bytes = file_read_bytes(path, kMaxFileBytes);
    try {
        return npy_parse(bytes);
    } catch (const core::Error& error) {
        throw core::Error(error.code(), path.string() + ": " + error.what());
    }
}

void write_npy(const std::filesystem::path& path, const NpyArray& array) {
    file_write_atomic(path, npy_serialize(array));
}

}  // namespace kiln::image
