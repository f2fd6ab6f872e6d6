#include "app/engine_setup.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/device.h"
#include "weights/registry.h"

namespace kiln::app {

namespace {

std::unique_ptr<engine::Backend> make_cpu(const BackendOptions& options) {
    engine::cpu::CpuBackendOptions cpu;
    cpu.conv_algorithm = options.conv_algorithm == "direct" ? engine::cpu::ConvAlgorithm::DIRECT
                                                            : engine::cpu::ConvAlgorithm::AUTO;
    return engine::cpu::make_cpu_backend(cpu);
}

}  // namespace

void add_engine_options(CLI::App& cmd, EngineOptions& options) {
    cmd.add_option("--models-dir", options.models_dir,
                   "folder of model files (default: $KILN_MODELS_DIR or ./models)");
    cmd.add_option("--device", options.backend.device, "auto, cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    cmd.add_option("--threads", options.threads, "CPU threads (0: all cores)")
        ->check(CLI::NonNegativeNumber);
    cmd.add_option("--conv-algo", options.backend.conv_algorithm,
                   "CPU convolution algorithm: auto (Winograd where fast) or direct")
        ->check(CLI::IsMember({"auto", "direct"}));
    cmd.add_option("--conv-search", options.backend.conv_search,
                   "CUDA convolution algorithm choice: heuristic, or timed at plan time")
        ->check(CLI::IsMember({"heuristic", "timed"}));
}

std::string resolve_models_dir(const std::string& flag) {
    if (!flag.empty())
        return flag;
    if (const char* env = std::getenv("KILN_MODELS_DIR"); env && *env)
        return env;
    return "models";
}

std::unique_ptr<engine::Backend> start_backend(const BackendOptions& options) {
    const engine::DeviceRequest request = engine::parse_device_request(options.device);
    const engine::DeviceDecision device = engine::choose_device(request);
    spdlog::info("{}", device.reason);
    if (device.kind == engine::BackendKind::CUDA) {
        try {
            engine::cuda::CudaBackendOptions cuda;
            cuda.conv_algo_search = options.conv_search == "timed"
                                        ? engine::cuda::ConvAlgoSearch::TIMED
                                        : engine::cuda::ConvAlgoSearch::HEURISTIC;
            auto backend = engine::cuda::make_cuda_backend(cuda);
            backend->create_context(engine::ContextOptions{1});  // fails here if it cannot run
            return backend;
        } catch (const core::Error& e) {
            if (request == engine::DeviceRequest::CUDA)
                throw;
            spdlog::info("CPU backend: the CUDA backend failed to start ({})", e.what());
            return make_cpu(options);
        }
    }
    return make_cpu(options);
}

LoadedBackend load_backend(const EngineOptions& options) {
    LoadedBackend loaded;
    loaded.backend = start_backend(options.backend);
    loaded.context = loaded.backend->create_context(engine::ContextOptions{options.threads});
    return loaded;
}

LoadedEngine load_engine(const EngineOptions& options, const std::string& model_name) {
    LoadedBackend backend = load_backend(options);
    LoadedEngine loaded;
    loaded.backend = std::move(backend.backend);
    loaded.context = std::move(backend.context);
    weights::ModelRegistry registry(resolve_models_dir(options.models_dir));
    loaded.model = engine::Model::create(registry.load(model_name));
    spdlog::info("model {}: {} x{}, {} parameters, {} threads", model_name, loaded.model->arch(),
                 loaded.model->scale(), loaded.model->parameter_count(), loaded.context->threads());
    return loaded;
}

}  // namespace kiln::app
