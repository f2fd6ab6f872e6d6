// What torch.save pickles mean: the allow-listed globals, the storage persistent ids and the
// tensor rebuild calls, turned into plain descriptions. Shared by the zip and legacy formats.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "weights/state_dict.h"
#include "weights/unpickler.h"

namespace kiln::weights {

struct TorchStorageRef {
    std::string key;                    // zip: data/<key>; legacy: order key of the raw data
    std::string type_name;              // e.g. "torch.FloatStorage"
    std::optional<StorageDType> dtype;  // empty for non-float storages
    size_t element_size = 4;
    int64_t numel = 0;
};

struct TorchTensorRef {
    size_t storage = 0;  // index into TorchPickleHooks::storages()
    int64_t offset = 0;  // in elements
    std::vector<int64_t> size;
    std::vector<int64_t> stride;
};

class TorchPickleHooks : public PickleHooks {
  public:
    explicit TorchPickleHooks(std::string file) : file_(std::move(file)) {}

    void check_global(const std::string& module, const std::string& name) override;
    PickleValue* reduce(PickleArena& arena,
                        const PickleValue& callable,
                        const PickleValue& args) override;
    PickleValue* persistent_load(PickleArena& arena, const PickleValue& pid) override;
    void build(PickleValue& object, const PickleValue& state) override;

    const std::vector<TorchStorageRef>& storages() const { return storages_; }
    const std::vector<TorchTensorRef>& tensors() const { return tensors_; }

  private:
    [[noreturn]] void bad(const std::string& what) const;

    std::string file_;
    std::vector<TorchStorageRef> storages_;
    std::map<std::string, size_t> storage_index_;
    std::vector<TorchTensorRef> tensors_;
};

// The (name, tensor index) pairs of the unpickled root: a dict of tensors, or one wrapped in
// "params_ema" (preferred) or "params". Non-tensor entries are skipped.
std::vector<std::pair<std::string, size_t>> torch_state_dict_entries(const PickleValue* root,
                                                                     const std::string& file);

// Copies one tensor out of its storage bytes (already bounds-checked to hold the storage's
// numel elements) into fp32. Throws UNSUPPORTED for non-contiguous or non-float tensors.
WeightTensor torch_materialize(const TorchTensorRef& tensor,
                               const TorchStorageRef& storage,
                               std::span<const uint8_t> storage_bytes,
                               const std::string& name,
                               const std::string& file);

}  // namespace kiln::weights
