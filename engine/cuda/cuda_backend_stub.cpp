// make_cuda_backend in a build without the CUDA toolkit.
#include "core/error.h"
#include "engine/cuda/cuda_backend.h"

namespace kiln::engine::cuda {

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions&) {
    throw core::Error(core::ErrorCode::UNSUPPORTED, "this build has no CUDA support");
}

}  // namespace kiln::engine::cuda
