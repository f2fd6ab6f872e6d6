// kiln models (the registry) and kiln info (devices and why a backend is used).
#include <dnnl.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "app/commands.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/device.h"
#include "weights/registry.h"

namespace kiln::app {

namespace {

int run_models(const std::string& dir_flag, bool json) {
    const std::string dir = resolve_models_dir(dir_flag);
    weights::ModelRegistry registry(dir);
    const auto models = registry.list();
    if (json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& m : models) {
            out.push_back({{"name", m.name},
                           {"format", m.format},
                           {"task", m.task},
                           {"arch", m.arch_name},
                           {"family", m.family},
                           {"noise", m.noise},
                           {"scale", m.scale},
                           {"parameters", m.param_count},
                           {"dtype", m.stored_dtype},
                           {"error", m.error}});
        }
        std::cout << out.dump(2) << std::endl;
        return 0;
    }
    if (models.empty()) {
        std::cout << "no models in " << dir << " (run scripts/fetch-models.sh)\n";
        return 0;
    }
    std::printf("%-36s %-11s %-8s %-16s %-11s %5s %-12s %10s %5s\n", "NAME", "FORMAT", "TASK",
                "ARCH", "FAMILY", "SCALE", "NOISE", "PARAMS", "DTYPE");
    for (const auto& m : models) {
        if (!m.error.empty()) {
            std::printf("%-36s %-11s unusable: %s\n", m.name.c_str(), m.format.c_str(),
                        m.error.c_str());
            continue;
        }
        const std::string scale = m.scale ? std::to_string(m.scale) + "x" : "-";
        std::printf("%-36s %-11s %-8s %-16s %-11s %5s %-12s %10lld %5s\n", m.name.c_str(),
                    m.format.c_str(), m.task.c_str(), m.arch_name.c_str(),
                    m.family.empty() ? "-" : m.family.c_str(), scale.c_str(),
                    m.noise.empty() ? "-" : m.noise.c_str(), static_cast<long long>(m.param_count),
                    m.stored_dtype.c_str());
    }
    return 0;
}

int run_info() {
    const dnnl_version_t* v = dnnl_version();
    std::printf("kiln %s\n", KILN_VERSION);
    std::printf("CPU backend: oneDNN %d.%d.%d, channel block %d, %u hardware threads\n", v->major,
                v->minor, v->patch, engine::cpu::native_channel_block(),
                std::thread::hardware_concurrency());
    const engine::CudaProbe cuda = engine::probe_cuda();
    std::printf("CUDA: %s, %d device(s), runtime says: %s\n",
                cuda.compiled ? "compiled in" : "not compiled", cuda.device_count,
                cuda.status.c_str());
    std::printf("--device auto: %s\n",
                engine::choose_device(engine::DeviceRequest::AUTO).reason.c_str());
    return 0;
}

}  // namespace

Runner register_models(CLI::App& app) {
    auto dir = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand("models", "list the models in the models folder");
    cmd->add_option("--models-dir", *dir, "folder of model files");
    cmd->add_flag("--json", *json, "JSON output");
    return [cmd, dir, json]() { return cmd->parsed() ? run_models(*dir, *json) : -1; };
}

Runner register_info(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("info", "backends, devices and library versions");
    return [cmd]() { return cmd->parsed() ? run_info() : -1; };
}

}  // namespace kiln::app
