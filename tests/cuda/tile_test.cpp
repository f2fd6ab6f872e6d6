// The tile kernels (kernels/tile.cu) on a GPU against the host walk of the same per-element
// code (kernels/tile_body.h): a tiled "upscale" (gather each window from the unpadded image
// with the reflect rule, nearest upsample as the model, scatter core-only or blended) on the
// device and on the host. Gather and core-only scatter are exact copies (bit-equal); the
// blended accumulation may contract multiply-adds differently (max abs <= 1e-6).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/pipeline/tiling.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#include "kernels/tile_body.h"
#include "tests/cuda/cuda_device.h"
#include "tests/cuda/device_array.h"

namespace kiln::kernels {
namespace {

using test::DeviceArray;

struct Case {
    int h, w, c, tile, pad, pre, scale, blend;
};

std::vector<TileAxis> axes(int length, int tile, int pad) {
    std::vector<TileAxis> out;
    for (const engine::TileSpan& s : engine::plan_tiles(length, tile, pad, 1))
        out.push_back({s.core_begin, s.core_end, s.window_begin, s.window_end});
    return out;
}

class TileKernels : public ::testing::TestWithParam<Case> {};

TEST_P(TileKernels, MatchTheHostWalk) {
    KILN_REQUIRE_CUDA();
    const Case t = GetParam();
    const int ph = t.h + 2 * t.pre, pw = t.w + 2 * t.pre, s = t.scale;
    const auto rows = axes(ph, t.tile, t.pad), cols = axes(pw, t.tile, t.pad);
    std::vector<BlendAxis> by(rows.size()), bx(cols.size());
    plan_blend_axes(rows.data(), static_cast<int>(rows.size()), s, t.blend, by.data());
    plan_blend_axes(cols.data(), static_cast<int>(cols.size()), s, t.blend, bx.data());
    const bool acc = t.blend > 0;
    const TileScatterMode mode = acc ? TileScatterMode::ACCUMULATE : TileScatterMode::COPY;

    std::vector<float> image(static_cast<size_t>(t.h) * t.w * t.c);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float& v : image)
        v = dist(rng);
    const ViewDesc image_d{t.h, t.w, t.c, t.c, 0};
    const ViewDesc out_d{t.h * s, t.w * s, t.c, t.c, 0};
    const size_t out_n = static_cast<size_t>(out_d.pixels()) * t.c;
    std::vector<float> host_out(out_n, acc ? 0.0f : NAN);

    DeviceArray<float> d_image(image.size()), d_out(out_n);
    d_image.upload(image);
    if (acc)
        KILN_CUDA_CHECK(cudaMemset(d_out.ptr, 0, out_n * sizeof(float)));
    else
        KILN_CUDA_CHECK(cudaMemset(d_out.ptr, 0xff, out_n * sizeof(float)));  // NaN

    for (size_t i = 0; i < rows.size(); ++i) {
        for (size_t j = 0; j < cols.size(); ++j) {
            const int wh = rows[i].window_end - rows[i].window_begin;
            const int ww = cols[j].window_end - cols[j].window_begin;
            // fp16 tile buffer (a channel slice at offset 1 of c + 2), fp16 model output.
            const ViewDesc tile_d{wh, ww, t.c, t.c + 2, 1};
            const ViewDesc res_d{wh * s, ww * s, t.c, t.c, 0};
            std::vector<uint16_t> host_tile(static_cast<size_t>(tile_d.pixels()) * (t.c + 2), 0);
            std::vector<uint16_t> host_res(static_cast<size_t>(res_d.pixels()) * t.c, 0);
            DeviceArray<uint16_t> d_tile(host_tile.size()), d_res(host_res.size());
            d_tile.upload(host_tile);

            TileImage src_h{nullptr, image.data(), image_d}, src_d{nullptr, d_image.ptr, image_d};
            TileImage tile_h{host_tile.data(), nullptr, tile_d},
                tile_dv{d_tile.ptr, nullptr, tile_d};
            const int y0 = rows[i].window_begin - t.pre, x0 = cols[j].window_begin - t.pre;
            tile_gather_host(make_tile_gather_params(src_h, tile_h, y0, x0, TileEdge::REFLECT));
            tile_gather(src_d, tile_dv, y0, x0, TileEdge::REFLECT, nullptr);
            ASSERT_EQ(d_tile.download(), host_tile) << "gather, tile " << i << "," << j;

            // The model: nearest upsample by s (host: the same index map).
            for (int y = 0; y < res_d.h; ++y)
                for (int x = 0; x < res_d.w; ++x)
                    for (int ch = 0; ch < t.c; ++ch)
                        host_res[static_cast<size_t>(res_d.offset(y, x, ch))] =
                            host_tile[static_cast<size_t>(tile_d.offset(y / s, x / s, ch))];
            if (s == 1)
                copy({d_tile.ptr, tile_d}, {d_res.ptr, res_d}, nullptr);
            else
                upsample_nearest({d_tile.ptr, tile_d}, {d_res.ptr, res_d}, s, nullptr);

            TileImage res_h{host_res.data(), nullptr, res_d}, res_dv{d_res.ptr, nullptr, res_d};
            TileImage out_h{nullptr, host_out.data(), out_d}, out_dv{nullptr, d_out.ptr, out_d};
            tile_scatter_host(
                make_tile_scatter_params(res_h, out_h, by[i], bx[j], t.pre * s, t.pre * s, mode));
            tile_scatter(res_dv, out_dv, by[i], bx[j], t.pre * s, t.pre * s, mode, nullptr);
        }
    }
    KILN_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> dev_out = d_out.download();
    for (size_t k = 0; k < out_n; ++k) {
        ASSERT_FALSE(std::isnan(dev_out[k])) << "pixel not written: " << k;
        if (acc)
            ASSERT_NEAR(dev_out[k], host_out[k], 1e-6f) << k;
        else
            ASSERT_EQ(dev_out[k], host_out[k]) << k;
    }
}

INSTANTIATE_TEST_SUITE_P(Tiles,
                         TileKernels,
                         ::testing::Values(Case{1, 1, 3, 0, 0, 0, 1, 0},
                                           Case{37, 23, 3, 8, 4, 2, 2, 0},
                                           Case{37, 23, 3, 8, 4, 2, 2, 6},
                                           Case{64, 48, 4, 16, 8, 5, 4, 16},
                                           Case{19, 40, 3, 7, 3, 3, 1, 3},
                                           Case{16, 16, 3, 64, 4, 0, 2, 8}));

}  // namespace
}  // namespace kiln::kernels
