// What every weight reader produces: named fp32 tensors in PyTorch layout (conv weights OIHW),
// plus the dtype they were stored in. Model code reads only this.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::weights {

enum class StorageDType { F32, F16, BF16 };

const char* storage_dtype_name(StorageDType dtype);

struct WeightTensor {
    StorageDType stored_as = StorageDType::F32;
    std::vector<int64_t> shape;  // PyTorch order, e.g. conv weight [out, in, kh, kw]
    std::vector<float> data;     // converted to fp32, row-major, numel(shape) values

    int64_t numel() const;
};

using StateDict = std::map<std::string, WeightTensor>;

}  // namespace kiln::weights
