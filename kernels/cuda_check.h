// The check-macro family of the CUDA code: each reports the failing statement, function, file
// and line, and throws kiln::core::Error (OUT_OF_MEMORY for allocation failures, so the scheduler
// can retry smaller; INTERNAL otherwise). Never aborts.
#pragma once

#include <cuda_runtime_api.h>

namespace kiln::kernels {

[[noreturn]] void throw_cuda_error(cudaError_t err,
                                   const char* statement,
                                   const char* function,
                                   const char* file,
                                   int line);

}  // namespace kiln::kernels

#define KILN_CUDA_CHECK(statement)                                                       \
    do {                                                                                 \
        const cudaError_t kiln_err_ = (statement);                                       \
        if (kiln_err_ != cudaSuccess)                                                    \
            ::kiln::kernels::throw_cuda_error(kiln_err_, #statement, __func__, __FILE__, \
                                              __LINE__);                                 \
    } while (0)

// After a kernel launch: reports launch-configuration errors under the op's name.
#define KILN_CUDA_CHECK_LAUNCH(op_name)                                                          \
    do {                                                                                         \
        const cudaError_t kiln_err_ = cudaGetLastError();                                        \
        if (kiln_err_ != cudaSuccess)                                                            \
            ::kiln::kernels::throw_cuda_error(kiln_err_, op_name, __func__, __FILE__, __LINE__); \
    } while (0)
