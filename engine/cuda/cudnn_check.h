// cuDNN member of the check-macro family (kernels/cuda_check.h): statement, function, file
// and line; ALLOC_FAILED becomes core::Error(OUT_OF_MEMORY).
#pragma once

#include <cudnn.h>

#include <string>

#include "core/error.h"

namespace kiln::engine::cuda {

[[noreturn]] inline void throw_cudnn_error(cudnnStatus_t status,
                                           const char* statement,
                                           const char* function,
                                           const char* file,
                                           int line) {
    const core::ErrorCode code = status == CUDNN_STATUS_ALLOC_FAILED
                                     ? core::ErrorCode::OUT_OF_MEMORY
                                     : core::ErrorCode::INTERNAL;
    throw core::Error(code, std::string("cuDNN error ") + cudnnGetErrorString(status) + " in " +
                                statement + " at " + function + " " + file + ":" +
                                std::to_string(line));
}

}  // namespace kiln::engine::cuda

#define KILN_CUDNN_CHECK(statement)                                                               \
    do {                                                                                          \
        const cudnnStatus_t kiln_status_ = (statement);                                           \
        if (kiln_status_ != CUDNN_STATUS_SUCCESS)                                                 \
            ::kiln::engine::cuda::throw_cudnn_error(kiln_status_, #statement, __func__, __FILE__, \
                                                    __LINE__);                                    \
    } while (0)
