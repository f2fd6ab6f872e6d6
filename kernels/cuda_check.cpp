#include "kernels/cuda_check.h"

#include <string>

#include "core/error.h"

namespace kiln::kernels {

void throw_cuda_error(cudaError_t err,
                      const char* statement,
                      const char* function,
                      const char* file,
                      int line) {
    const core::ErrorCode code = err == cudaErrorMemoryAllocation ? core::ErrorCode::OUT_OF_MEMORY
                                                                  : core::ErrorCode::INTERNAL;
    cudaGetLastError();  // clear a non-sticky error so the context stays usable
    throw core::Error(code, std::string("CUDA error ") + cudaGetErrorName(err) + " (" +
                                cudaGetErrorString(err) + ") in " + statement + " at " + function +
                                " " + file + ":" + std::to_string(line));
}

}  // namespace kiln::kernels
