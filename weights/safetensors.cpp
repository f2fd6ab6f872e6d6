#include "weights/safetensors.h"

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/json_depth.h"
#include "weights/byte_io.h"
#include "weights/mapped_file.h"

namespace kiln::weights {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

using nlohmann::json;

[[noreturn]] void bad(const std::string& file, const std::string& what) {
    throw core::Error(core::ErrorCode::BAD_FILE, file + ": " + what);
}

StorageDType parse_dtype(const std::string& file, const std::string& name, const json& j) {
    if (!j.is_string())
        bad(file, "tensor '" + name + "': dtype is not a string");
    const std::string s = j.get<std::string>();
    if (s == "F32")
        return StorageDType::F32;
    if (s == "F16")
        return StorageDType::F16;
    if (s == "BF16")
        return StorageDType::BF16;
    throw core::Error(core::ErrorCode::UNSUPPORTED,
                      file + ": tensor '" + name + "' has dtype " + s + " (only F32, F16, BF16)");
}

uint64_t parse_u64(const std::string& file,
                   const std::string& name,
                   const json& j,
                   const char* field) {
    if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0)) {
        bad(file,
            "tensor '" + name + "': " + field + " holds a value that is not an unsigned integer");
    }
    return j.get<uint64_t>();
}

WeightTensor read_tensor(const std::string& file,
                         const std::string& name,
                         const json& info,
                         std::span<const uint8_t> data) {
    if (!info.is_object())
        bad(file, "tensor '" + name + "': entry is not an object");
    const auto dtype_it = info.find("dtype");
    const auto shape_it = info.find("shape");
    const auto offsets_it = info.find("data_offsets");
    if (dtype_it == info.end() || shape_it == info.end() || offsets_it == info.end()) {
        bad(file, "tensor '" + name + "': needs dtype, shape and data_offsets");
    }
    WeightTensor t;
    t.stored_as = parse_dtype(file, name, *dtype_it);
    if (!shape_it->is_array())
        bad(file, "tensor '" + name + "': shape is not an array");
    for (const json& d : *shape_it) {
        const uint64_t v = parse_u64(file, name, d, "shape");
        if (v > static_cast<uint64_t>(INT64_MAX))
            bad(file, "tensor '" + name + "': shape dim too large");
        t.shape.push_back(static_cast<int64_t>(v));
    }
    const auto numel = detail::checked_numel(t.shape);
    const auto bytes =
        numel ? detail::checked_mul(*numel, detail::dtype_size(t.stored_as)) : std::nullopt;
    if (!bytes)
        bad(file, "tensor '" + name + "': element count overflows");
    if (!offsets_it->is_array() || offsets_it->size() != 2) {
        bad(file, "tensor '" + name + "': data_offsets must be [begin, end]");
    }
    const uint64_t begin = parse_u64(file, name, (*offsets_it)[0], "data_offsets");
    const uint64_t end = parse_u64(file, name, (*offsets_it)[1], "data_offsets");
    if (end < begin || end > data.size()) {
        bad(file, "tensor '" + name + "': data_offsets [" + std::to_string(begin) + ", " +
                      std::to_string(end) + "] outside the " + std::to_string(data.size()) +
                      "-byte data section");
    }
    if (end - begin != static_cast<uint64_t>(*bytes)) {
        bad(file, "tensor '" + name + "': data_offsets span " + std::to_string(end - begin) +
                      " bytes but shape and dtype need " + std::to_string(*bytes));
    }
    t.data.resize(static_cast<size_t>(*numel));
    detail::convert_to_f32(data.data() + begin, t.data.size(), t.stored_as, t.data.data());
    return t;
}

}  // namespace

namespace {

json read_header(const std::string& file, std::span<const uint8_t> bytes) {
    if (bytes.size() < 8)
        bad(file,
            "too short for a safetensors header (" + std::to_string(bytes.size()) + " bytes)");
    const uint64_t header_len = detail::load_le<uint64_t>(bytes.data());
    if (header_len > kMaxHeaderBytes || header_len > bytes.size() - 8) {
        bad(file, "header length " + std::to_string(header_len) + " exceeds the file size (" +
                      std::to_string(bytes.size()) + " bytes) or the 100 MB limit");
    }
    const auto header_begin = reinterpret_cast<const char*>(bytes.data() + 8);
    if (core::json_nesting_depth(std::string_view(header_begin, header_len), core::max_json_depth) >
        core::max_json_depth)
        bad(file, "header nests deeper than " + std::to_string(core::max_json_depth) + " levels");
    json header;
    try {
        header = json::parse(header_begin, header_begin + header_len);
    } catch (const json::exception& e) {
        bad(file, std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object())
        bad(file, "header is not a JSON object");
    return header;
}

}  // namespace

StateDict load_safetensors(const std::filesystem::path& path) {
    const std::string file = path.string();
    const MappedFile mapped(path);
    const auto bytes = mapped.bytes();
    const json header = read_header(file, bytes);
    const uint64_t header_len = detail::load_le<uint64_t>(bytes.data());
    const auto data = bytes.subspan(8 + header_len);
    StateDict out;
    for (const auto& [name, info] : header.items()) {
        if (name == "__metadata__")
            continue;
        out.emplace(name, read_tensor(file, name, info, data));
    }
    return out;
}

}  // namespace kiln::weights

namespace kiln::weights {

std::map<std::string, std::string> load_safetensors_metadata(const std::filesystem::path& path) {
    const std::string file = path.string();
    const MappedFile mapped(path);
    const json header = read_header(file, mapped.bytes());
    std::map<std::string, std::string> out;
    const auto it = header.find("__metadata__");
    if (it == header.end())
        return out;
    if (!it->is_object())
        bad(file, "__metadata__ is not an object");
    for (const auto& [key, value] : it->items()) {
        if (!value.is_string())
            bad(file, "__metadata__ value '" + key + "' is not a string");
        out[key] = value.get<std::string>();
    }
    return out;
}

}  // namespace kiln::weights
