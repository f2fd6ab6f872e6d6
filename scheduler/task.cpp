#include "scheduler/task.h"

#include "core/error.h"
#include "engine/diffusion/diffusion_model.h"
#include "engine/models/model.h"
#include "scheduler/generate_task.h"
#include "scheduler/upscale_task.h"

namespace kiln::scheduler {

TaskKind task_kind_of(weights::ModelRegistry& registry, const std::string& name) {
    const auto kind = parse_task_kind(registry.locate(name).task);
    if (!kind) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          "model '" + name + "': no task kind runs its files");
    }
    return *kind;
}

std::shared_ptr<const TaskModel> load_task_model(weights::ModelRegistry& registry,
                                                 const std::string& name) {
    const weights::ModelFiles files = registry.locate(name);
    switch (task_kind_of(registry, name)) {
        case TaskKind::GENERATE:
            return std::make_shared<GenerateModel>(
                engine::diffusion::load_diffusion_model(files.paths.at(0)));
        case TaskKind::UPSCALE:
            break;
    }
    return std::make_shared<UpscaleModel>(
        engine::Model::create(weights::load_model_files(files.format, files.paths)));
}

std::string stored_input_content_type(TaskKind kind, const std::vector<uint8_t>& stored_input) {
    switch (kind) {
        case TaskKind::GENERATE:
            return "application/json";  // {"prompt": ...}
        case TaskKind::UPSCALE:
            break;
    }
    switch (image::sniff_format(stored_input)) {
        case image::ImageFormat::PNG:
            return "image/png";
        case image::ImageFormat::JPEG:
            return "image/jpeg";
        case image::ImageFormat::UNKNOWN:
            break;
    }
    return "application/octet-stream";
}

}  // namespace kiln::scheduler
