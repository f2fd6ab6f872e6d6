// kiln generate -m MODEL --prompt "ankle boot" --steps 30 --sampler ddim --guidance 3 --seed 7
//   -n 8 grid.png
#include <spdlog/spdlog.h>

#include <chrono>

#include "app/commands.h"
#include "app/engine_setup.h"
#include "app/progress_bar.h"
#include "core/error.h"
#include "engine/diffusion/diffusion_model.h"
#include "engine/diffusion/generation.h"
#include "engine/diffusion/image_grid.h"
#include "image/image.h"
#include "image/npy.h"
#include "weights/registry.h"

namespace kiln::app {

namespace {

struct GenerateArgs {
    EngineOptions engine;
    std::string model;
    std::string prompt;
    std::string sampler = "ddim";
    engine::diffusion::GenerateParams params;
    std::string output;
    std::string npy;
    std::string trace;
    int columns = 0;
};

int run_generate(GenerateArgs& args) {
    const auto start = std::chrono::steady_clock::now();
    args.params.sampler = engine::diffusion::parse_sampler(args.sampler);
    LoadedBackend loaded = load_backend(args.engine);
    weights::ModelRegistry registry(resolve_models_dir(args.engine.models_dir));
    const auto model =
        engine::diffusion::load_diffusion_model(registry.generation_model_dir(args.model));
    spdlog::info("model {}: UNet2DConditionModel, {} parameters, {} threads", args.model,
                 model->unet->parameter_count(), loaded.context->threads());
    spdlog::info("\"{}\": {} image(s), {} {} steps, guidance {}, seed {}", args.prompt,
                 args.params.count, args.sampler, args.params.steps, args.params.guidance,
                 args.params.seed);

    ProgressBar bar("generate");
    engine::Trace trace;
    engine::diffusion::GenerateHooks hooks;
    hooks.on_step = [&](int done, int total) { bar.update(done, total); };
    hooks.trace = args.trace.empty() ? nullptr : &trace;
    engine::diffusion::Latents latents;
    {
        engine::TraceRange job(hooks.trace, "generate " + args.model, "job");
        latents = engine::diffusion::generate(*model, *loaded.backend, *loaded.context, args.prompt,
                                              args.params, hooks);
    }
    bar.finish();
    if (!args.trace.empty()) {
        trace.write_file(args.trace);
        spdlog::info("wrote {} (Chrome trace: open in Perfetto or chrome://tracing)", args.trace);
    }
    if (!args.npy.empty()) {
        const std::vector<int64_t> shape = {latents.count, latents.h, latents.w, latents.c};
        image::write_npy(args.npy, image::NpyArray::from_f32(shape, latents.data));
        spdlog::info("wrote {} (NHWC float32 in the model's range)", args.npy);
    }
    if (!args.output.empty()) {
        const image::Image grid = engine::diffusion::latents_to_grid(latents, args.columns, 2);
        image::write_png_file(args.output, grid);
        spdlog::info("wrote {} ({}x{})", args.output, grid.width, grid.height);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    spdlog::info("done in {}", format_duration(seconds));
    return 0;
}

}  // namespace

Runner register_generate(CLI::App& app) {
    auto args = std::make_shared<GenerateArgs>();
    CLI::App* cmd = app.add_subcommand("generate", "generate images with a diffusion model");
    cmd->add_option("-m,--model", args->model, "generation model (see `kiln models`)")->required();
    cmd->add_option("-p,--prompt", args->prompt,
                    "what to generate (a class name for class models)");
    cmd->add_option("--steps", args->params.steps, "sampler steps")->check(CLI::Range(1, 1000));
    cmd->add_option("--sampler", args->sampler, "ddim, ddpm, euler or euler_karras")
        ->check(CLI::IsMember({"ddim", "ddpm", "euler", "euler_karras"}));
    cmd->add_option("--guidance", args->params.guidance, "classifier-free guidance scale (1: none)")
        ->check(CLI::Range(0.0, 50.0));
    cmd->add_option("--seed", args->params.seed, "noise seed");
    cmd->add_option("-n,--count", args->params.count, "images")->check(CLI::Range(1, 64));
    cmd->add_option("--height", args->params.height, "image height (default: the model's)");
    cmd->add_option("--width", args->params.width, "image width (default: the model's)");
    cmd->add_option("--columns", args->columns, "images per grid row (default: up to 10)");
    cmd->add_option("--npy", args->npy, "also write the raw images as .npy [n, h, w, c]");
    cmd->add_option("--trace", args->trace, "write a Chrome trace JSON of the steps and ops");
    cmd->add_option("output", args->output, "grid PNG");
    add_engine_options(*cmd, args->engine);
    return [cmd, args]() {
        if (!cmd->parsed())
            return -1;
        if (args->output.empty() && args->npy.empty())
            throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                              "give an output PNG or --npy FILE");
        return run_generate(*args);
    };
}

}  // namespace kiln::app
