// kiln convert IN OUT.safetensors: any model kiln reads (.pth, .safetensors, ncnn .param with
// its .bin, or a model's name in the models folder) to canonical tensor names plus the
// architecture block (weights/arch_metadata.h), which loads with nothing left to detect.
#include <spdlog/spdlog.h>

#include <filesystem>

#include "app/commands.h"
#include "core/error.h"
#include "weights/arch_metadata.h"
#include "weights/registry.h"
#include "weights/safetensors_writer.h"

namespace kiln::app {

namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
    std::string models_dir;
    std::string input;
    std::string output;
};

// A path: its format from the extension (.param takes its .bin sibling); else a model name.
weights::ModelFiles locate(const ConvertArgs& args) {
    const fs::path in(args.input);
    if (fs::is_regular_file(in)) {
        const std::string ext = in.extension().string();
        if (ext == ".param")
            return {in.stem().string(),
                    "ncnn",
                    "upscale",
                    {in, fs::path(in).replace_extension(".bin")}};
        if (ext == ".pth" || ext == ".safetensors")
            return {in.stem().string(), ext.substr(1), "upscale", {in}};
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          args.input + ": not a .pth, .safetensors or .param file");
    }
    weights::ModelRegistry registry(resolve_models_dir(args.models_dir));
    return registry.locate(args.input);
}

int run_convert(const ConvertArgs& args) {
    if (fs::path(args.output).extension() != ".safetensors") {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          args.output + ": the output must be a .safetensors file");
    }
    const weights::ModelFiles files = locate(args);
    if (files.task != "upscale") {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          args.input + ": only upscale models convert (a " + files.task +
                              " model is a folder already in diffusers' layout)");
    }
    const weights::DetectedModel model = weights::load_model_files(files.format, files.paths);
    weights::write_safetensors(args.output, model.weights, weights::arch_metadata(model));
    spdlog::info("wrote {}: {} x{}, {} tensors", args.output, model.arch_name, model.scale,
                 model.weights.size());
    return 0;
}

}  // namespace

Runner register_convert(CLI::App& app) {
    auto args = std::make_shared<ConvertArgs>();
    CLI::App* cmd = app.add_subcommand(
        "convert", "write a model as safetensors with canonical names and its architecture");
    cmd->add_option("input", args->input, "a .pth/.safetensors/.param file or a model name")
        ->required();
    cmd->add_option("output", args->output, "output .safetensors")->required();
    cmd->add_option("--models-dir", args->models_dir, "folder of model files (for a name)");
    return [cmd, args]() { return cmd->parsed() ? run_convert(*args) : -1; };
}

}  // namespace kiln::app
