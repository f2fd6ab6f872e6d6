// The kiln executable: subcommands for upscaling, parity runs, benchmarks and the registry.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <vector>

#include "app/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
    // Logs go to stderr so stdout carries only results (JSON of bench, models --json).
    spdlog::set_default_logger(spdlog::stderr_color_mt("kiln"));
    spdlog::set_pattern("%^%l%$: %v");

    CLI::App app{"kiln: image model inference (super-resolution and diffusion)"};
    app.require_subcommand(1);
    bool verbose = false;
    bool quiet = false;
    app.add_flag("-v,--verbose", verbose, "debug logging");
    app.add_flag("-q,--quiet", quiet, "warnings and errors only");

    std::vector<kiln::app::Runner> runners = {
        kiln::app::register_upscale(app), kiln::app::register_generate(app),
        kiln::app::register_forward(app), kiln::app::register_bench(app),
        kiln::app::register_models(app),  kiln::app::register_info(app),
        kiln::app::register_serve(app),   kiln::app::register_convert(app),
    };
    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(verbose ? spdlog::level::debug
                      : quiet ? spdlog::level::warn
                              : spdlog::level::info);
    try {
        for (const auto& run : runners) {
            const int rc = run();
            if (rc >= 0)
                return rc;
        }
    } catch (const kiln::core::Error& e) {
        spdlog::error("{} ({})", e.what(), kiln::core::error_code_name(e.code()));
        return 1;
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    return 1;
}
