// Runs a super-resolution model over an image of any size: Real-ESRGAN's reflect pre-pad,
// tiles chosen from a memory budget (or given), one cached plan per window shape, and
// seamless stitching (each tile keeps only its core).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "engine/backend.h"
#include "engine/models/model.h"
#include "engine/pipeline/float_image.h"
#include "engine/pipeline/tiling.h"

namespace kiln::engine {

struct UpscaleOptions {
    int tile = -1;      // core size in input pixels: -1 from the memory budget, 0 one tile
    int tile_pad = 16;  // context on each inner side of a tile, input pixels
    int prepad = 10;    // reflect padding of the whole image (Real-ESRGAN's pre_pad)
    size_t memory_budget = size_t{2} << 30;  // bytes a run may hold (tile = -1)
    // Real-CUGAN's syncgap (realcugan-ncnn-vulkan's -c), for models that share SE means
    // (Model::shared_se_blocks) in a run of several tiles: 0 every tile its own means;
    // 1 block by block, each block's mean averaged over the tiles with the earlier blocks
    // already shared (one probe pass per block); 2 every tile's own means, averaged (one
    // probe pass). One tile: no probe, all modes agree.
    int syncgap = 1;
};

struct UpscaleHooks {
    const std::atomic<bool>* cancel = nullptr;
    std::function<void(int tiles_done, int tiles_total)> on_tile;
};

// The tile core size for an h x w image (0: the whole image in one tile): options.tile when
// given, else the largest that fits options.memory_budget. core::Error(TOO_LARGE) when none fits.
int choose_tile(const Model& model,
                const Backend& backend,
                int h,
                int w,
                const UpscaleOptions& options);

// The largest model window a run over an h x w image with tile core `tile` compiles a plan
// for: one core plus its context, or the whole padded image (tile 0).
struct WindowShape {
    int height = 0, width = 0;
};
WindowShape largest_window(const Model& model,
                           int h,
                           int w,
                           int tile,
                           const UpscaleOptions& options);

// Estimated peak bytes of a run over an h x w image with tile core `tile`: the plan of its
// largest window, plus the probe plan that runs first when the run shares SE means across
// several tiles (both may be held at once: plans are cached).
size_t estimate_run_bytes(const Model& model,
                          const Backend& backend,
                          int h,
                          int w,
                          int tile,
                          const UpscaleOptions& options);

class Upscaler {
  public:
    Upscaler(const Model& model, Backend& backend, ExecutionContext& context);

    // rgb: [h, w, 3], nominally in [0, 1]. Returns [h*scale, w*scale, 3], unclamped.
    FloatImage run(const FloatImage& rgb,
                   const UpscaleOptions& options,
                   const UpscaleHooks& hooks = {});

    // The tile core size run() uses for an h x w image (0: the whole image in one tile).
    int choose_tile(int h, int w, const UpscaleOptions& options) const;
    // Estimated peak bytes of the plan for a model window of h x w.
    size_t estimate_peak_bytes(int h, int w) const;
    const Model& model() const { return model_; }

  private:
    // One tile: the window the model sees (rows ry, columns rx of the padded image, plus the
    // border) and the core it keeps.
    struct Window {
        TileSpan ry, rx;
    };
    // The cached plan of an h x w window, its first `fed` SE blocks fed (0: none).
    Plan& plan_for(int h, int w, int fed);
    // The SE means every tile of a syncgap run is fed: one array per block.
    std::vector<std::vector<float>> shared_means(const FloatImage& padded,
                                                 const std::vector<Window>& windows,
                                                 int syncgap,
                                                 const UpscaleHooks& hooks,
                                                 int& done,
                                                 int total);

    const Model& model_;
    Backend& backend_;
    ExecutionContext& context_;
    std::mutex mutex_;
    std::map<std::tuple<int, int, int>, std::unique_ptr<Plan>> plans_;
};

}  // namespace kiln::engine
