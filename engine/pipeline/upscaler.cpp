#include "engine/pipeline/upscaler.h"

#include <algorithm>

#include "core/error.h"
#include "engine/pipeline/tiling.h"

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

}  // namespace

int choose_tile(const Model& model,
                const Backend& backend,
                int h,
                int w,
                const UpscaleOptions& options) {
    if (options.tile >= 0)
        return options.tile;
    const auto fits = [&](const WindowShape& window) {
        return backend.estimate_peak_bytes(model.build_graph(window.height, window.width)) <=
               options.memory_budget;
    };
    if (fits(largest_window(model, h, w, 0, options)))
        return 0;
    for (int core : {512, 384, 256, 192, 128, 96, 64, 48, 32}) {
        if (fits(largest_window(model, h, w, core, options)))
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

Plan& Upscaler::plan_for(int h, int w) {
    std::lock_guard lock(mutex_);
    auto& slot = plans_[{h, w}];
    if (!slot)
        slot = backend_.compile(model_.build_graph(h, w), context_);
    return *slot;
}

FloatImage Upscaler::run(const FloatImage& rgb,
                         const UpscaleOptions& options,
                         const UpscaleHooks& hooks) {
    if (rgb.c != model_.in_channels() || rgb.h <= 0 || rgb.w <= 0) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "upscale: expected a non-empty RGB image");
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

    int tile = choose_tile(rgb.h, rgb.w, options);
    if (tile > 0)
        tile = std::max(tile, model_.min_window());
    const auto rows = plan_tiles(ph, tile, options.tile_pad, m);
    const auto cols = plan_tiles(pw, tile, options.tile_pad, m);
    const int total = static_cast<int>(rows.size() * cols.size());

    FloatImage out(ph * s, pw * s, 3);
    int done = 0;
    for (const TileSpan& ry : rows) {
        for (const TileSpan& rx : cols) {
            const int wh = ry.window_end - ry.window_begin;
            const int ww = rx.window_end - rx.window_begin;
            Plan& plan = plan_for(wh, ww);
            const FloatImage window =
                crop(padded, ry.window_begin, rx.window_begin, wh + 2 * b, ww + 2 * b);
            FloatImage result(wh * s, ww * s, 3);
            RunControl control;
            control.cancel = hooks.cancel;
            plan.run(window.data.data(), result.data.data(), control);
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
    }
    return crop(out, pre * s, pre * s, rgb.h * s, rgb.w * s);
}

}  // namespace kiln::engine
