#include "weights/state_dict.h"

namespace kiln::weights {

const char* storage_dtype_name(StorageDType dtype) {
    switch (dtype) {
        case StorageDType::F32:
            return "F32";
        case StorageDType::F16:
            return "F16";
        case StorageDType::BF16:
            return "BF16";
    }
    return "?";
}

int64_t WeightTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

}  // namespace kiln::weights
