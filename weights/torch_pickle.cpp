#include "weights/torch_pickle.h"

#include <array>
#include <string_view>

#include "core/error.h"
#include "weights/byte_io.h"

namespace kiln::weights {

namespace {

using Kind = PickleValue::Kind;

struct StorageType {
    std::string_view name;
    std::optional<StorageDType> dtype;
    size_t element_size;
};

// Storage classes torch.save writes. Only the float ones can become weights; the others are
// accepted as names (harmless) and refused when a tensor uses them.
constexpr std::array<StorageType, 11> kStorageTypes{{
    {"FloatStorage", StorageDType::F32, 4},
    {"HalfStorage", StorageDType::F16, 2},
    {"BFloat16Storage", StorageDType::BF16, 2},
    {"DoubleStorage", std::nullopt, 8},
    {"LongStorage", std::nullopt, 8},
    {"IntStorage", std::nullopt, 4},
    {"ShortStorage", std::nullopt, 2},
    {"CharStorage", std::nullopt, 1},
    {"ByteStorage", std::nullopt, 1},
    {"BoolStorage", std::nullopt, 1},
    {"ComplexFloatStorage", std::nullopt, 8},
}};

constexpr std::array<std::string_view, 4> kCallables{
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter",
};

const StorageType* find_storage_type(std::string_view qualified) {
    if (qualified.substr(0, 6) != "torch.")
        return nullptr;
    for (const StorageType& t : kStorageTypes) {
        if (qualified.substr(6) == t.name)
            return &t;
    }
    return nullptr;
}

bool is_int(const PickleValue* v) {
    return v->kind == Kind::INT;
}

}  // namespace

void TorchPickleHooks::bad(const std::string& what) const {
    throw core::Error(core::ErrorCode::BAD_FILE, file_ + ": " + what);
}

void TorchPickleHooks::check_global(const std::string& module, const std::string& name) {
    const std::string q = module + "." + name;
    if (find_storage_type(q) != nullptr)
        return;
    for (std::string_view c : kCallables) {
        if (q == c)
            return;
    }
    bad("refused global '" + q +
        "' in pickle (only tensor state dicts are loaded; nothing is executed)");
}

PickleValue* TorchPickleHooks::persistent_load(PickleArena& arena, const PickleValue& pid) {
    // ('storage', StorageType, key, location, numel[, view_metadata (legacy)])
    if (pid.kind != Kind::TUPLE || pid.items.size() < 5 || pid.items[0]->kind != Kind::STRING ||
        pid.items[0]->s != "storage" || pid.items[1]->kind != Kind::GLOBAL ||
        pid.items[2]->kind != Kind::STRING || !is_int(pid.items[4])) {
        bad("persistent id is not a ('storage', type, key, location, numel) tuple");
    }
    if (pid.items.size() > 6 || (pid.items.size() == 6 && pid.items[5]->kind != Kind::NONE)) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          file_ + ": legacy storage views are not supported");
    }
    const StorageType* type = find_storage_type(pid.items[1]->s);
    if (type == nullptr)
        bad("'" + pid.items[1]->s + "' is not a storage type");
    if (pid.items[4]->i < 0)
        bad("negative storage size");
    const std::string& key = pid.items[2]->s;
    auto [it, inserted] = storage_index_.emplace(key, storages_.size());
    if (inserted) {
        storages_.push_back(
            {key, std::string(pid.items[1]->s), type->dtype, type->element_size, pid.items[4]->i});
    } else if (storages_[it->second].type_name != pid.items[1]->s ||
               storages_[it->second].numel != pid.items[4]->i) {
        bad("storage '" + key + "' described twice with different type or size");
    }
    PickleValue* v = arena.make(Kind::OBJECT);
    v->s = "storage";
    v->i = static_cast<int64_t>(it->second);
    return v;
}

PickleValue* TorchPickleHooks::reduce(PickleArena& arena,
                                      const PickleValue& callable,
                                      const PickleValue& args) {
    const std::string& fn = callable.s;
    const auto& a = args.items;
    if (fn == "collections.OrderedDict") {
        if (!a.empty())
            bad("OrderedDict called with arguments");
        return arena.make(Kind::DICT);
    }
    if (fn == "torch._utils._rebuild_parameter") {
        // (data, requires_grad, backward_hooks): a parameter is its tensor.
        if (a.empty() || a[0]->kind != Kind::OBJECT || a[0]->s != "tensor")
            bad("_rebuild_parameter without a tensor");
        return a[0];
    }
    if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor") {
        // (storage, storage_offset, size, stride, ...)
        if (a.size() < 4 || a[0]->kind != Kind::OBJECT || a[0]->s != "storage" || !is_int(a[1]) ||
            a[2]->kind != Kind::TUPLE || a[3]->kind != Kind::TUPLE ||
            a[2]->items.size() != a[3]->items.size() || a[2]->items.size() > 16) {
            bad(fn + " called with unexpected arguments");
        }
        TorchTensorRef t;
        t.storage = static_cast<size_t>(a[0]->i);
        t.offset = a[1]->i;
        for (size_t k = 0; k < a[2]->items.size(); ++k) {
            if (!is_int(a[2]->items[k]) || !is_int(a[3]->items[k]))
                bad("tensor size/stride is not integers");
            t.size.push_back(a[2]->items[k]->i);
            t.stride.push_back(a[3]->items[k]->i);
        }
        tensors_.push_back(std::move(t));
        PickleValue* v = arena.make(Kind::OBJECT);
        v->s = "tensor";
        v->i = static_cast<int64_t>(tensors_.size() - 1);
        return v;
    }
    bad("'" + fn + "' cannot be called");
}

void TorchPickleHooks::build(PickleValue& object, const PickleValue& /*state*/) {
    // OrderedDict state is the module's _metadata (versions); it carries no weights.
    if (object.kind != Kind::DICT)
        bad("BUILD on something other than a dict");
}

std::vector<std::pair<std::string, size_t>> torch_state_dict_entries(const PickleValue* root,
                                                                     const std::string& file) {
    if (root->kind != Kind::DICT) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          file + ": the pickled object is not a dict of tensors");
    }
    auto lookup = [](const PickleValue* d, std::string_view key) -> const PickleValue* {
        const PickleValue* found = nullptr;
        for (const auto& [k, v] : d->dict) {
            if (k->kind == Kind::STRING && k->s == key)
                found = v;
        }
        return found != nullptr && found->kind == Kind::DICT ? found : nullptr;
    };
    const PickleValue* dict = root;
    if (const PickleValue* ema = lookup(root, "params_ema")) {
        dict = ema;
    } else if (const PickleValue* params = lookup(root, "params")) {
        dict = params;
    }
    std::vector<std::pair<std::string, size_t>> out;
    std::string keys;
    for (const auto& [k, v] : dict->dict) {
        if (k->kind != Kind::STRING)
            continue;
        if (keys.size() < 200)
            keys += (keys.empty() ? "" : ", ") + k->s;
        if (v->kind == Kind::OBJECT && v->s == "tensor")
            out.emplace_back(k->s, static_cast<size_t>(v->i));
    }
    if (out.empty()) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          file + ": no tensors in the state dict (keys: " + keys + ")");
    }
    return out;
}

WeightTensor torch_materialize(const TorchTensorRef& tensor,
                               const TorchStorageRef& storage,
                               std::span<const uint8_t> storage_bytes,
                               const std::string& name,
                               const std::string& file) {
    if (!storage.dtype) {
        throw core::Error(core::ErrorCode::UNSUPPORTED, file + ": tensor '" + name +
                                                            "' is stored as " + storage.type_name +
                                                            " (only float32/float16/bfloat16)");
    }
    const auto numel = detail::checked_numel(tensor.size);
    if (!numel || tensor.offset < 0) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          file + ": tensor '" + name + "' has an invalid size or offset");
    }
    // Row-major contiguity; dims of size 1 may carry any stride. expected never exceeds numel.
    int64_t expected = 1;
    for (size_t d = tensor.size.size(); *numel > 0 && d-- > 0;) {
        if (tensor.size[d] != 1 && tensor.stride[d] != expected) {
            throw core::Error(core::ErrorCode::UNSUPPORTED,
                              file + ": tensor '" + name + "' is not contiguous");
        }
        expected *= tensor.size[d];
    }
    if (*numel > 0 && (tensor.offset > storage.numel || *numel > storage.numel - tensor.offset)) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          file + ": tensor '" + name + "' (" + std::to_string(*numel) +
                              " elements at offset " + std::to_string(tensor.offset) +
                              ") exceeds its storage of " + std::to_string(storage.numel));
    }
    WeightTensor t;
    t.stored_as = *storage.dtype;
    t.shape = tensor.size;
    t.data.resize(static_cast<size_t>(*numel));
    if (*numel > 0) {
        const size_t begin = static_cast<size_t>(tensor.offset) * storage.element_size;
        detail::convert_to_f32(storage_bytes.data() + begin, t.data.size(), t.stored_as,
                               t.data.data());
    }
    return t;
}

}  // namespace kiln::weights
