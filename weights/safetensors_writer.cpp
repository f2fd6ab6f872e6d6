#include "weights/safetensors_writer.h"

#include <unistd.h>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"

namespace kiln::weights {

namespace {

size_t element_bytes(StorageDType d) {
    return d == StorageDType::F32 ? 4 : 2;
}

void append(std::string& out, const WeightTensor& t) {
    const size_t start = out.size();
    out.resize(start + t.data.size() * element_bytes(t.stored_as));
    char* p = out.data() + start;
    for (const float v : t.data) {
        if (t.stored_as == StorageDType::F32) {
            std::memcpy(p, &v, 4);
            p += 4;
            continue;
        }
        const uint16_t h =
            t.stored_as == StorageDType::F16 ? core::float_to_half(v) : core::float_to_bf16(v);
        std::memcpy(p, &h, 2);
        p += 2;
    }
}

}  // namespace

void write_safetensors(const std::filesystem::path& path,
                       const StateDict& weights,
                       const std::map<std::string, std::string>& metadata) {
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty())
        header["__metadata__"] = metadata;
    std::string data;
    for (const auto& [name, t] : weights) {  // a std::map: sorted keys
        const size_t begin = data.size();
        append(data, t);
        header[name] = {{"dtype", storage_dtype_name(t.stored_as)},
                        {"shape", t.shape},
                        {"data_offsets", {begin, data.size()}}};
    }
    std::string text = header.dump();
    // The data starts 8-byte aligned, as the format recommends.
    text.append((8 - text.size() % 8) % 8, ' ');
    const uint64_t length = text.size();
    char length_bytes[8];
    std::memcpy(length_bytes, &length, 8);  // little-endian host (x86-64, aarch64)

    const std::filesystem::path tmp =
        path.string() + ".tmp" + std::to_string(static_cast<long>(::getpid()));
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(length_bytes, 8);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        out.flush();
        if (!out) {
            std::error_code ec;
            std::filesystem::remove(tmp, ec);
            throw core::Error(core::ErrorCode::IO, "cannot write " + path.string());
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        throw core::Error(core::ErrorCode::IO, "cannot write " + path.string());
    }
}

}  // namespace kiln::weights
