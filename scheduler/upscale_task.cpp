#include "scheduler/upscale_task.h"

#include <nlohmann/json.hpp>

#include "engine/pipeline/upscaler.h"
#include "scheduler/admission.h"
#include "scheduler/job_runner.h"
#include "scheduler/scheduler_error.h"

namespace kiln::scheduler {

namespace {

// The worker's Upscaler: the plans built by earlier jobs of this model are reused.
struct UpscalePlans final : TaskPlans {
    UpscalePlans(const engine::Model& model,
                 engine::Backend& backend,
                 engine::ExecutionContext& context)
        : upscaler(model, backend, context) {}
    engine::Upscaler upscaler;
};

}  // namespace

int parse_upscale_params(const std::string& params_json) {
    const nlohmann::json params = nlohmann::json::parse(params_json, nullptr, false);
    if (params.is_discarded() || !params.is_object())
        throw SchedulerError(SchedulerCode::INVALID_PARAMS, "the parameters must be an object");
    int tile = -1;
    for (const auto& [key, value] : params.items()) {
        if (key != "tile") {
            throw SchedulerError(SchedulerCode::INVALID_PARAMS,
                                 "unknown parameter \"" + key + "\"; upscale accepts \"tile\"");
        }
        if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 8192) {
            throw SchedulerError(SchedulerCode::INVALID_PARAMS,
                                 "\"tile\" must be an integer from 0 (whole image) to 8192");
        }
        tile = value.get<int>();
    }
    return tile;
}

UpscaleModel::UpscaleModel(std::shared_ptr<const engine::Model> model) : model_(std::move(model)) {}

size_t UpscaleModel::memory_bytes() const {
    return static_cast<size_t>(model_->parameter_count()) * sizeof(float);
}

Admission UpscaleModel::admit(const std::string& params_json,
                              const TaskInput& input,
                              const engine::Backend& backend,
                              const TaskLimits& limits) const {
    Admission admission;
    admission.tile = parse_upscale_params(params_json);
    if (input.image.empty()) {
        throw SchedulerError(SchedulerCode::MISSING_INPUT,
                             "this model upscales images: the job needs an image",
                             InputPart::IMAGE);
    }
    const AdmittedImage admitted = admit_upscale_input(
        *model_, backend, input.image, admission.tile, limits.memory_budget, limits.decode);
    admission.params_json = params_json;
    admission.width = admitted.width;
    admission.height = admitted.height;
    admission.stored_input = input.image;
    return admission;
}

std::shared_ptr<TaskPlans> UpscaleModel::make_plans(engine::Backend& backend,
                                                    engine::ExecutionContext& context) const {
    return std::make_shared<UpscalePlans>(*model_, backend, context);
}

std::vector<RunOutput> UpscaleModel::run(const Job& job,
                                         const std::vector<uint8_t>& stored_input,
                                         TaskPlans* plans,
                                         engine::Backend&,
                                         engine::ExecutionContext&,
                                         const TaskLimits& limits,
                                         const RunHooks& hooks) const {
    engine::UpscaleHooks upscale_hooks;
    upscale_hooks.cancel = hooks.cancel;
    upscale_hooks.on_tile = hooks.on_progress;
    auto& upscaler = static_cast<UpscalePlans&>(*plans).upscaler;
    return {run_upscale_job(upscaler, stored_input, job.tile, limits.memory_budget, limits.decode,
                            upscale_hooks)};
}

void UpscaleModel::describe(ModelDescription& description) const {
    description.scale = model_->scale();
}

}  // namespace kiln::scheduler
