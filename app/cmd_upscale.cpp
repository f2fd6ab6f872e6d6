// kiln upscale -m MODEL in.png out.png [--trace trace.json]
#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>

#include "app/commands.h"
#include "app/engine_setup.h"
#include "app/progress_bar.h"
#include "engine/pipeline/upscale_image.h"
#include "engine/trace.h"
#include "image/image.h"

namespace kiln::app {

namespace {

struct UpscaleArgs {
    EngineOptions engine;
    std::string model;
    std::string input;
    std::string output;
    int tile = -1;
    int tile_pad = 16;
    int prepad = 10;
    int syncgap = engine::UpscaleOptions{}.syncgap;
    size_t budget_mib = 2048;
    std::string trace;  // Chrome trace JSON path; empty: none
};

int run_upscale(const UpscaleArgs& args) {
    const auto start = std::chrono::steady_clock::now();
    // The job range (and NVTX range in CUDA builds), one "tile" range per tile: the time
    // between successive tile callbacks.
    engine::Trace trace;
    engine::Trace* const tracing = args.trace.empty() ? nullptr : &trace;
    std::optional<engine::TraceRange> job;
    job.emplace(tracing, "upscale " + args.input, "job");
    job->arg("model", args.model);
    const image::Image input = image::read_image_file(args.input);
    LoadedEngine loaded = load_engine(args.engine, args.model);
    engine::Upscaler upscaler(*loaded.model, *loaded.backend, *loaded.context);

    engine::UpscaleOptions options;
    options.tile = args.tile;
    options.tile_pad = args.tile_pad;
    options.prepad = args.prepad;
    options.syncgap = args.syncgap;
    options.memory_budget = args.budget_mib << 20;
    const int tile = upscaler.choose_tile(input.height, input.width, options);
    options.tile = tile;
    spdlog::info("{}: {}x{} {}-channel {}-bit, tile {}", args.input, input.width, input.height,
                 input.channels, input.bit_depth, tile == 0 ? "whole image" : std::to_string(tile));

    ProgressBar bar("upscale");
    engine::UpscaleHooks hooks;
    double tile_start = tracing ? trace.now_us() : 0.0;
    hooks.on_tile = [&](int done, int total) {
        bar.update(done, total);
        if (!tracing)
            return;
        const double now = trace.now_us();
        if (done > 0) {
            trace.add({"tile " + std::to_string(done) + "/" + std::to_string(total),
                       "tile",
                       tile_start,
                       now - tile_start,
                       engine::Trace::thread_id(),
                       {}});
        }
        tile_start = now;
    };
    const image::Image output = engine::upscale_image(upscaler, input, options, hooks);
    bar.finish();
    image::write_png_file(args.output, output);
    job.reset();
    if (tracing) {
        trace.write_file(args.trace);
        spdlog::info("wrote trace {} ({} events)", args.trace, trace.events().size());
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    spdlog::info("wrote {} ({}x{}) in {}", args.output, output.width, output.height,
                 format_duration(seconds));
    return 0;
}

}  // namespace

Runner register_upscale(CLI::App& app) {
    auto args = std::make_shared<UpscaleArgs>();
    CLI::App* cmd = app.add_subcommand("upscale", "upscale an image with a super-resolution model");
    cmd->add_option("-m,--model", args->model, "model name (see `kiln models`)")->required();
    cmd->add_option("input", args->input, "input PNG or JPEG")->required();
    cmd->add_option("output", args->output, "output PNG")->required();
    cmd->add_option("--tile", args->tile,
                    "tile size in input pixels (0: whole image; default: from --memory-budget)");
    cmd->add_option("--tile-pad", args->tile_pad, "context pixels around each tile")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--prepad", args->prepad, "reflect padding of the image (Real-ESRGAN: 10)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--syncgap", args->syncgap,
                    "Real-CUGAN, several tiles: share the SE means across tiles (0: no; 1: block "
                    "by block; 2: each tile's own, averaged)")
        ->check(CLI::Range(0, 2))
        ->capture_default_str();
    cmd->add_option("--memory-budget", args->budget_mib, "MiB a run's plans may use");
    cmd->add_option("--trace", args->trace,
                    "write a Chrome trace (Perfetto, chrome://tracing) of the job to this file");
    add_engine_options(*cmd, args->engine);
    return [cmd, args]() { return cmd->parsed() ? run_upscale(*args) : -1; };
}

}  // namespace kiln::app
