// The kiln CLI's subcommands. Each registers its options on CLI11 and runs; main() maps a
// kiln::core::Error to a message and a non-zero exit.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace kiln::app {

// Which backend runs, and how: what --device, --conv-algo and --conv-search ask for.
struct BackendOptions {
    std::string device = "auto";  // auto, cpu or cuda
    std::string conv_algorithm = "auto";
    std::string conv_search = "heuristic";  // CUDA: cuDNN algorithm by heuristic or timing
};

// Options shared by every command that runs a model.
struct EngineOptions {
    std::string models_dir;
    BackendOptions backend;
    int threads = 0;
};

void add_engine_options(CLI::App& cmd, EngineOptions& options);
std::string resolve_models_dir(const std::string& flag);

using Runner = std::function<int()>;
Runner register_upscale(CLI::App& app);
Runner register_generate(CLI::App& app);
Runner register_forward(CLI::App& app);
Runner register_bench(CLI::App& app);
Runner register_models(CLI::App& app);
Runner register_info(CLI::App& app);
Runner register_serve(CLI::App& app);
Runner register_convert(CLI::App& app);

}  // namespace kiln::app
