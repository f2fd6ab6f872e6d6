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

// Logs one line saying which backend runs and why.
LoadedBackend load_backend(const EngineOptions& options);
// load_backend, then the upscaling model `model_name` from the registry.
LoadedEngine load_engine(const EngineOptions& options, const std::string& model_name);

}  // namespace kiln::app
