// make_cuda_backend in a build without the CUDA toolkit.
#include "engine/core/error.h"
#include "engine/cuda/cuda_backend.h"

namespace kiln::engine::cuda {

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions&) {
    throw Error(ErrorCode::UNSUPPORTED, "this build has no CUDA support");
}

}  // namespace kiln::engine::cuda
