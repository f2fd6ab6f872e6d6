// Convolution epilogue: bias, activation (ReLU, LeakyReLU, PReLU, SiLU, GELU, sigmoid) and
// scaled residual adds, fused in one pass over fp16 views with fp32 math. Kernel -> launcher ->
// entry; the per-chunk work is kernels/activation_body.h (shared with the CPU tests).
#include "kernels/activation_body.h"
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.h"

namespace kiln::kernels {

namespace {

template <int kBlock, int kVec>
__global__ void __launch_bounds__(kBlock) epilogue_kernel(const EpilogueParams p) {
    const int64_t chunks = p.plan.chunks();
    for (int64_t k = global_thread(); k < chunks; k += grid_threads())
        epilogue_chunk<kVec>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    if (blockIdx.x == 0 && static_cast<int>(threadIdx.x) < p.plan.tail)
        epilogue_chunk<1>(p, 0, p.plan.tail_start() + threadIdx.x);
}

void launch_epilogue(const EpilogueParams& p, cudaStream_t stream) {
    const Launch1D l =
        launch_1d(p.plan.chunks() > 0 ? p.plan.chunks() : p.plan.tail, kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    if (p.plan.vec == kHalfVector)
        epilogue_kernel<kBlockSize, kHalfVector><<<l.grid, l.block, 0, stream>>>(p);
    else
        epilogue_kernel<kBlockSize, 1><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("epilogue");
}

}  // namespace

void epilogue(const DeviceView& src,
              const DeviceView& dst,
              const EpilogueArgs& args,
              cudaStream_t stream) {
    launch_epilogue(make_epilogue_params(src, dst, args), stream);
}

}  // namespace kiln::kernels
