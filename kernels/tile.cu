// Tile gather and scatter for the upscale pipeline: a tile window of an image (edge rule
// outside it) into a tile buffer, and a processed tile's output back into the full output,
// core-only or with linear overlap blending (kernels/tile_math.h). The per-element work is
// kernels/tile_body.h (shared with the CPU tests).
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.h"
#include "kernels/tile_body.h"

namespace kiln::kernels {

namespace {

template <int kBlock>
__global__ void __launch_bounds__(kBlock) tile_gather_kernel(const TileGatherParams p) {
    const int64_t work = p.work();
    for (int64_t k = global_thread(); k < work; k += grid_threads())
        tile_gather_element(p, k);
}

template <int kBlock>
__global__ void __launch_bounds__(kBlock) tile_scatter_kernel(const TileScatterParams p) {
    const int64_t work = p.work();
    for (int64_t k = global_thread(); k < work; k += grid_threads())
        tile_scatter_element(p, k);
}

void launch_tile_gather(const TileGatherParams& p, cudaStream_t stream) {
    const Launch1D l = launch_1d(p.work(), kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    tile_gather_kernel<kBlockSize><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("tile_gather");
}

void launch_tile_scatter(const TileScatterParams& p, cudaStream_t stream) {
    const Launch1D l = launch_1d(p.work(), kBlockSize, kMaxBlocks);
    if (l.grid == 0)
        return;
    tile_scatter_kernel<kBlockSize><<<l.grid, l.block, 0, stream>>>(p);
    KILN_CUDA_CHECK_LAUNCH("tile_scatter");
}

}  // namespace

void tile_gather(const TileImage& src,
                 const TileImage& dst,
                 int y0,
                 int x0,
                 TileEdge edge,
                 cudaStream_t stream) {
    const TileGatherParams p = make_tile_gather_params(src, dst, y0, x0, edge);
    if (const char* why = tile_gather_problem(p))
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, std::string("tile_gather: ") + why);
    launch_tile_gather(p, stream);
}

void tile_scatter(const TileImage& src,
                  const TileImage& dst,
                  const BlendAxis& ay,
                  const BlendAxis& ax,
                  int origin_y,
                  int origin_x,
                  TileScatterMode mode,
                  cudaStream_t stream) {
    const TileScatterParams p =
        make_tile_scatter_params(src, dst, ay, ax, origin_y, origin_x, mode);
    if (const char* why = tile_scatter_problem(p))
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, std::string("tile_scatter: ") + why);
    launch_tile_scatter(p, stream);
}

}  // namespace kiln::kernels
