// Whether this machine has a CUDA device; tests skip with the runtime's reason when not.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

namespace kiln::test {

inline bool cuda_device_present(std::string* why) {
    int count = 0;  // left unwritten when there is no driver
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        *why = std::string("no CUDA device: ") + cudaGetErrorString(err);
        return false;
    }
    if (count == 0) {
        *why = "no CUDA device";
        return false;
    }
    return true;
}

}  // namespace kiln::test

#define KILN_REQUIRE_CUDA()                                 \
    do {                                                    \
        std::string kiln_why_;                              \
        if (!::kiln::test::cuda_device_present(&kiln_why_)) \
            GTEST_SKIP() << kiln_why_;                      \
    } while (0)
