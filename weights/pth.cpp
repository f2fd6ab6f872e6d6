#include "weights/pth.h"

#include <algorithm>
#include <map>
#include <string_view>

#include "core/error.h"
#include "weights/byte_io.h"
#include "weights/mapped_file.h"
#include "weights/torch_pickle.h"
#include "weights/unpickler.h"
#include "weights/zip_reader.h"

namespace kiln::weights {

namespace {

using Kind = PickleValue::Kind;

[[noreturn]] void bad(const std::string& file, const std::string& what) {
    throw core::Error(core::ErrorCode::BAD_FILE, file + ": " + what);
}

// Bytes a storage must hold, or BAD_FILE when its claimed size overflows.
uint64_t storage_bytes_needed(const TorchStorageRef& s, const std::string& file) {
    const auto n = detail::checked_mul(s.numel, static_cast<int64_t>(s.element_size));
    if (!n)
        bad(file, "storage '" + s.key + "' size overflows");
    return static_cast<uint64_t>(*n);
}

// Shared tail of both formats: collect the state dict and copy every tensor out.
template <typename StorageBytes>
StateDict materialize_all(const PickleValue* root,
                          const TorchPickleHooks& hooks,
                          const std::string& file,
                          StorageBytes&& storage_bytes) {
    StateDict out;
    for (const auto& [name, index] : torch_state_dict_entries(root, file)) {
        const TorchTensorRef& t = hooks.tensors()[index];
        const TorchStorageRef& s = hooks.storages()[t.storage];
        out.insert_or_assign(name, torch_materialize(t, s, storage_bytes(t.storage), name, file));
    }
    return out;
}

StateDict load_zip(std::span<const uint8_t> bytes, const std::string& file) {
    const ZipReader zip(bytes, file);
    const ZipEntry* pkl = nullptr;
    for (const ZipEntry& e : zip.entries()) {
        const std::string_view n = e.name;
        if (n.size() >= 8 && n.substr(n.size() - 8) == "data.pkl" &&
            (n.size() == 8 || n[n.size() - 9] == '/')) {
            pkl = &e;
            break;
        }
    }
    if (pkl == nullptr)
        bad(file, "zip archive has no data.pkl (not a torch.save file)");
    const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);
    std::vector<uint8_t> pkl_scratch;
    const auto pkl_bytes = zip.read(*pkl, pkl_scratch);
    PickleArena arena;
    TorchPickleHooks hooks(file);
    const UnpickleResult r = unpickle(pkl_bytes, arena, hooks, file + " (" + pkl->name + ")");

    std::map<size_t, std::vector<uint8_t>> inflated;
    std::map<size_t, std::span<const uint8_t>> views;
    auto storage_bytes = [&](size_t index) {
        if (auto it = views.find(index); it != views.end())
            return it->second;
        const TorchStorageRef& s = hooks.storages()[index];
        const std::string entry_name = prefix + "data/" + s.key;
        const ZipEntry* e = zip.find(entry_name);
        if (e == nullptr)
            bad(file, "missing zip entry '" + entry_name + "'");
        const uint64_t need = storage_bytes_needed(s, file);
        if (e->uncompressed_size < need) {
            bad(file, "entry '" + entry_name + "' holds " + std::to_string(e->uncompressed_size) +
                          " bytes, storage needs " + std::to_string(need));
        }
        const auto view = zip.read(*e, inflated[index]);
        views.emplace(index, view);
        return view;
    };
    return materialize_all(r.root, hooks, file, storage_bytes);
}

// Legacy stream: magic, protocol version, sys_info, the object, the storage key list, then
// for each key an int64 element count and the raw elements.
StateDict load_legacy(std::span<const uint8_t> bytes, const std::string& file) {
    static constexpr uint8_t kMagic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                           0x20, 0x6a, 0xa8, 0x50, 0x19};
    PickleArena arena;
    TorchPickleHooks hooks(file);
    size_t pos = 0;
    auto next = [&]() {
        const UnpickleResult r = unpickle(bytes.subspan(pos), arena, hooks, file);
        pos += r.consumed;
        return r.root;
    };
    const PickleValue* magic = next();
    if (magic->kind != Kind::BIG_INT ||
        magic->s != std::string_view(reinterpret_cast<const char*>(kMagic), 10)) {
        bad(file, "not a torch.save file (legacy magic number missing)");
    }
    const PickleValue* version = next();
    if (version->kind != Kind::INT || version->i != 1001) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          file + ": legacy torch protocol version is not 1001");
    }
    const PickleValue* sys_info = next();
    if (sys_info->kind != Kind::DICT)
        bad(file, "legacy sys_info is not a dict");
    for (const auto& [k, v] : sys_info->dict) {
        if (k->kind == Kind::STRING && k->s == "little_endian" && v->kind == Kind::BOOL && !v->b) {
            throw core::Error(core::ErrorCode::UNSUPPORTED, file + ": big-endian torch file");
        }
    }
    const PickleValue* root = next();
    const PickleValue* keys = next();
    if (keys->kind != Kind::LIST)
        bad(file, "legacy storage key list missing");

    std::map<std::string, size_t> index_of;
    for (size_t i = 0; i < hooks.storages().size(); ++i)
        index_of.emplace(hooks.storages()[i].key, i);
    std::vector<std::span<const uint8_t>> data(hooks.storages().size());
    for (const PickleValue* k : keys->items) {
        if (k->kind != Kind::STRING)
            bad(file, "legacy storage key is not a string");
        auto it = index_of.find(k->s);
        if (it == index_of.end())
            bad(file, "legacy storage '" + k->s + "' is never referenced");
        const TorchStorageRef& s = hooks.storages()[it->second];
        if (bytes.size() - pos < 8)
            bad(file, "truncated before storage '" + s.key + "'");
        const int64_t numel = detail::load_le<int64_t>(bytes.data() + pos);
        if (numel != s.numel) {
            bad(file, "storage '" + s.key + "' records " + std::to_string(numel) +
                          " elements, pickle says " + std::to_string(s.numel));
        }
        pos += 8;
        const uint64_t need = storage_bytes_needed(s, file);
        if (need > bytes.size() - pos) {
            bad(file, "truncated: storage '" + s.key + "' needs " + std::to_string(need) +
                          " bytes, " + std::to_string(bytes.size() - pos) + " left");
        }
        data[it->second] = bytes.subspan(pos, need);
        pos += need;
    }
    auto storage_bytes = [&](size_t index) {
        if (data[index].data() == nullptr &&
            storage_bytes_needed(hooks.storages()[index], file) > 0) {
            bad(file, "storage '" + hooks.storages()[index].key + "' has no data");
        }
        return data[index];
    };
    return materialize_all(root, hooks, file, storage_bytes);
}

}  // namespace

StateDict load_pth(const std::filesystem::path& path) {
    const std::string file = path.string();
    const MappedFile mapped(path);
    const auto bytes = mapped.bytes();
    if (is_zip(bytes))
        return load_zip(bytes, file);
    if (bytes.size() >= 2 && bytes[0] == 0x80 && bytes[1] >= 2)
        return load_legacy(bytes, file);
    bad(file, "not a PyTorch file (neither zip nor pickle)");
}

}  // namespace kiln::weights
