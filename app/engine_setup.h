// What every model-running command needs: a model from the registry, a backend chosen by
// --device, and an execution context.
#pragma once

#include <memory>

#include "app/commands.h"
#include "engine/backend.h"
#include "engine/models/model.h"

namespace kiln::app {

struct LoadedBackend {
    std::unique_ptr<engine::Backend> backend;
    std::unique_ptr<engine::ExecutionContext> context;
};

struct LoadedEngine {
    std::unique_ptr<engine::Backend> backend;
    std::unique_ptr<engine::ExecutionContext> context;
    std::unique_ptr<engine::Model> model;
};

// The backend options.device asks for, started: CUDA when asked for or (auto) when a device
// is present and the backend starts; the CPU otherwise. An explicit "cuda" that cannot start
// throws core::Error. Logs one line saying which backend runs and why. `kiln serve` and every
// model-running command choose here.
std::unique_ptr<engine::Backend> start_backend(const BackendOptions& options);
// start_backend, then one execution context with options.threads.
LoadedBackend load_backend(const EngineOptions& options);
// load_backend, then the upscaling model `model_name` from the registry.
LoadedEngine load_engine(const EngineOptions& options, const std::string& model_name);

}  // namespace kiln::app
