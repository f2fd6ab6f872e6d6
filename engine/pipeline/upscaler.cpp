#include "engine/pipeline/upscaler.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "core/error.h"

namespace kiln::engine {

namespace {

// Real-ESRGAN's reflect pre-pad; a model with a border gets its context from the border.
int prepad_of(const Model& model, const UpscaleOptions& options) {
    return model.takes_prepad() ? options.prepad : 0;
}

FloatImage pad_edges(const FloatImage& in,
                     int top,
                     int bottom,
                     int left,
                     int right,
                     EdgeMode mode) {
    switch (mode) {
        case EdgeMode::REPLICATE:
            return replicate_pad(in, top, bottom, left, right);
        case EdgeMode::ZERO:
            return zero_pad(in, top, bottom, left, right);
        case EdgeMode::REFLECT:
            break;
    }
    return reflect_pad(in, top, bottom, left, right);
}

// The tile core a run uses for a requested core (0: one tile).
int effective_tile(const Model& model, int tile) {
    return tile > 0 ? std::max(tile, model.min_window()) : tile;
}

// Whether a run over an h x w image with tile core `tile` shares SE means across tiles.
bool shares_means(const Model& model, int h, int w, int tile, const UpscaleOptions& options) {
    if (model.shared_se_blocks() == 0 || options.syncgap == 0 || tile <= 0)
        return false;
    const int pre = prepad_of(model, options);
    const int m = model.size_multiple();
    tile = effective_tile(model, tile);
    const size_t rows = plan_tiles(model.window_for(h + 2 * pre), tile, options.tile_pad, m).size();
    const size_t cols = plan_tiles(model.window_for(w + 2 * pre), tile, options.tile_pad, m).size();
    return rows * cols > 1;
}

// The largest probe graph of a syncgap run: every block's mean, none fed.
SharedMeans probe_all(const Model& model) {
    return {0, model.shared_se_blocks() - 1};
}

}  // namespace

size_t estimate_run_bytes(const Model& model,
                          const Backend& backend,
                          int h,
                          int w,
                          int tile,
                          const UpscaleOptions& options) {
    const WindowShape window = largest_window(model, h, w, tile, options);
    size_t bytes = backend.estimate_peak_bytes(model.build_graph(window.height, window.width));
    if (shares_means(model, h, w, tile, options)) {
        bytes += backend.estimate_peak_bytes(
            model.build_graph(window.height, window.width, probe_all(model)));
    }
    return bytes;
}

int choose_tile(const Model& model,
                const Backend& backend,
                int h,
                int w,
                const UpscaleOptions& options) {
    if (options.tile >= 0)
        return options.tile;
    const auto fits = [&](int core) {
        return estimate_run_bytes(model, backend, h, w, core, options) <= options.memory_budget;
    };
    for (int core : {0, 512, 384, 256, 192, 128, 96, 64, 48, 32}) {
        if (fits(core))
            return core;
    }
    throw core::Error(core::ErrorCode::TOO_LARGE,
                      model.arch() + ": no tile size fits the memory budget of " +
                          std::to_string(options.memory_budget >> 20) + " MiB");
}

WindowShape largest_window(const Model& model,
                           int h,
                           int w,
                           int tile,
                           const UpscaleOptions& options) {
    const int pre = prepad_of(model, options);
    const int ph = model.window_for(h + 2 * pre);
    const int pw = model.window_for(w + 2 * pre);
    if (tile == 0)
        return {ph, pw};
    const int window = model.window_for(tile + 2 * options.tile_pad);
    return {std::min(ph, window), std::min(pw, window)};
}

Upscaler::Upscaler(const Model& model, Backend& backend, ExecutionContext& context)
    : model_(model), backend_(backend), context_(context) {}

size_t Upscaler::estimate_peak_bytes(int h, int w) const {
    return backend_.estimate_peak_bytes(model_.build_graph(h, w));
}

int Upscaler::choose_tile(int h, int w, const UpscaleOptions& options) const {
    return engine::choose_tile(model_, backend_, h, w, options);
}

Plan& Upscaler::plan_for(int h, int w, int fed) {
    std::lock_guard lock(mutex_);
    auto& slot = plans_[{h, w, fed}];
    if (!slot) {
        slot = backend_.compile(
            fed == 0 ? model_.build_graph(h, w) : model_.build_graph(h, w, SharedMeans{fed, -1}),
            context_);
    }
    return *slot;
}

namespace {

FloatImage window_pixels(const FloatImage& padded, const TileSpan& ry, const TileSpan& rx, int b) {
    return crop(padded, ry.window_begin, rx.window_begin, ry.window_end - ry.window_begin + 2 * b,
                rx.window_end - rx.window_begin + 2 * b);
}

}  // namespace

std::vector<std::vector<float>> Upscaler::shared_means(const FloatImage& padded,
                                                       const std::vector<Window>& windows,
                                                       int syncgap,
                                                       const UpscaleHooks& hooks,
                                                       int& done,
                                                       int total) {
    const int blocks = model_.shared_se_blocks();
    const int b = model_.border();
    // Each block's channel count: the fed inputs of the window's final graph.
    const int wh = windows.front().ry.window_end - windows.front().ry.window_begin;
    const int ww = windows.front().rx.window_end - windows.front().rx.window_begin;
    std::vector<int> channels;
    {
        const Graph full = model_.build_graph(wh, ww, SharedMeans{blocks, -1});
        for (size_t i = 1; i < full.input_values().size(); ++i)
            channels.push_back(full.value(full.input_values()[i]).c);
    }
    std::vector<std::vector<float>> means;
    RunControl control;
    control.cancel = hooks.cancel;
    // Mode 1: a pass per block, fed the blocks before it; mode 2: one pass for every block.
    const int passes = syncgap == 1 ? blocks : 1;
    for (int pass = 0; pass < passes; ++pass) {
        const SharedMeans spec = syncgap == 1 ? SharedMeans{pass, pass} : probe_all(model_);
        const int first = spec.fed;
        int width = 0;
        for (int k = first; k <= spec.probe; ++k)
            width += channels[static_cast<size_t>(k)];
        // Probe plans live for their pass only: the final plan is built after them.
        std::map<std::pair<int, int>, std::unique_ptr<Plan>> probes;
        std::vector<double> sum(static_cast<size_t>(width), 0.0);
        std::vector<float> got(static_cast<size_t>(width));
        std::vector<const float*> inputs(1 + means.size());
        for (size_t k = 0; k < means.size(); ++k)
            inputs[1 + k] = means[k].data();
        for (const Window& win : windows) {
            const int h = win.ry.window_end - win.ry.window_begin;
            const int w = win.rx.window_end - win.rx.window_begin;
            auto& probe = probes[{h, w}];
            if (!probe)
                probe = backend_.compile(model_.build_graph(h, w, spec), context_);
            const FloatImage pixels = window_pixels(padded, win.ry, win.rx, b);
            inputs[0] = pixels.data.data();
            probe->run_batch(inputs, got.data(), 1, control);
            for (size_t i = 0; i < got.size(); ++i)
                sum[i] += got[i];
            ++done;
            if (hooks.on_tile)
                hooks.on_tile(done, total);
        }
        size_t at = 0;
        for (int k = first; k <= spec.probe; ++k) {
            std::vector<float> mean(static_cast<size_t>(channels[static_cast<size_t>(k)]));
            for (float& v : mean)
                v = static_cast<float>(sum[at++] / static_cast<double>(windows.size()));
            means.push_back(std::move(mean));
        }
    }
    return means;
}

FloatImage Upscaler::run(const FloatImage& rgb,
                         const UpscaleOptions& options,
                         const UpscaleHooks& hooks) {
    if (rgb.c != model_.in_channels() || rgb.h <= 0 || rgb.w <= 0) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "upscale: expected a non-empty RGB image");
    }
    if (options.syncgap < 0 || options.syncgap > 2) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "upscale: syncgap must be 0, 1 or 2");
    }
    const int s = model_.scale();
    const int m = model_.size_multiple();
    const int pre = prepad_of(model_, options);
    const int b = model_.border();
    // Pre-pad on every side and pad bottom/right to the model's size multiple, then extend by
    // the model's border, both with the model's edge rule (reflection unless its program
    // does otherwise): every window below reads its border from this image.
    const int ph = model_.window_for(rgb.h + 2 * pre);
    const int pw = model_.window_for(rgb.w + 2 * pre);
    const EdgeMode edge = model_.edge_mode();
    const FloatImage padded =
        pad_edges(rgb, pre + b, ph - rgb.h - pre + b, pre + b, pw - rgb.w - pre + b, edge);

    const int tile = effective_tile(model_, choose_tile(rgb.h, rgb.w, options));
    std::vector<Window> windows;
    for (const TileSpan& ry : plan_tiles(ph, tile, options.tile_pad, m)) {
        for (const TileSpan& rx : plan_tiles(pw, tile, options.tile_pad, m))
            windows.push_back({ry, rx});
    }
    const int blocks = model_.shared_se_blocks();
    const bool share = blocks > 0 && options.syncgap > 0 && windows.size() > 1;
    const int probe_passes = !share ? 0 : options.syncgap == 1 ? blocks : 1;
    const int total = static_cast<int>(windows.size()) * (1 + probe_passes);
    int done = 0;
    const std::vector<std::vector<float>> means =
        share ? shared_means(padded, windows, options.syncgap, hooks, done, total)
              : std::vector<std::vector<float>>{};
    std::vector<const float*> inputs(1 + means.size());
    for (size_t k = 0; k < means.size(); ++k)
        inputs[1 + k] = means[k].data();

    FloatImage out(ph * s, pw * s, 3);
    RunControl control;
    control.cancel = hooks.cancel;
    for (const auto& [ry, rx] : windows) {
        const int wh = ry.window_end - ry.window_begin;
        const int ww = rx.window_end - rx.window_begin;
        Plan& plan = plan_for(wh, ww, static_cast<int>(means.size()));
        const FloatImage window = window_pixels(padded, ry, rx, b);
        FloatImage result(wh * s, ww * s, 3);
        inputs[0] = window.data.data();
        plan.run_batch(inputs, result.data.data(), 1, control);
        // Keep the core: rows [core_begin, core_end) of the window, scaled.
        const int y0 = (ry.core_begin - ry.window_begin) * s;
        const int x0 = (rx.core_begin - rx.window_begin) * s;
        const int core_w = (rx.core_end - rx.core_begin) * s;
        for (int y = 0; y < (ry.core_end - ry.core_begin) * s; ++y) {
            std::copy_n(result.pixel(y0 + y, x0), static_cast<size_t>(core_w) * 3,
                        out.pixel(ry.core_begin * s + y, rx.core_begin * s));
        }
        ++done;
        if (hooks.on_tile)
            hooks.on_tile(done, total);
    }
    return crop(out, pre * s, pre * s, rgb.h * s, rgb.w * s);
}

}  // namespace kiln::engine
