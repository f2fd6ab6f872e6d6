#include "scheduler/generate_task.h"

#include "scheduler/generate_job.h"
#include "scheduler/ids.h"
#include "scheduler/scheduler_error.h"

namespace kiln::scheduler {

GenerateModel::GenerateModel(std::shared_ptr<const engine::diffusion::DiffusionModel> model)
    : model_(std::move(model)) {}

size_t GenerateModel::memory_bytes() const {
    return static_cast<size_t>(model_->unet->parameter_count()) * sizeof(float);
}

Admission GenerateModel::admit(const std::string& params_json,
                               const TaskInput& input,
                               const engine::Backend& backend,
                               const TaskLimits& limits) const {
    if (!input.image.empty()) {
        throw SchedulerError(SchedulerCode::INVALID_PARAMS,
                             "this model generates images from a prompt; it takes no image",
                             InputPart::PROMPT);
    }
    if (!input.prompt) {
        throw SchedulerError(SchedulerCode::MISSING_INPUT,
                             "this model generates images: the job needs a prompt",
                             InputPart::PROMPT);
    }
    const engine::diffusion::GenerateParams params =
        parse_generate_params(params_json, random_seed());
    admit_generate(*model_, *input.prompt, params);
    const auto& config = model_->unet->config();
    const int h = params.height ? params.height : config.sample_size;
    const int w = params.width ? params.width : config.sample_size;
    const size_t peak =
        backend.estimate_peak_bytes(model_->unet->build_graph(h, w, model_->encoder->tokens()));
    if (peak > limits.memory_budget) {
        throw SchedulerError(SchedulerCode::TOO_LARGE,
                             "a " + std::to_string(w) + "x" + std::to_string(h) +
                                 " generation needs about " + std::to_string(peak >> 20) +
                                 " MiB, over the memory budget of " +
                                 std::to_string(limits.memory_budget >> 20) + " MiB");
    }
    Admission admission;
    admission.params_json = with_seed(params_json, params.seed);  // a retry makes the same images
    admission.width = w;
    admission.height = h;
    admission.tile = 0;
    admission.stored_input = generate_input_bytes(*input.prompt);
    return admission;
}

std::shared_ptr<TaskPlans> GenerateModel::make_plans(engine::Backend&,
                                                     engine::ExecutionContext&) const {
    return nullptr;
}

std::vector<RunOutput> GenerateModel::run(const Job& job,
                                          const std::vector<uint8_t>& stored_input,
                                          TaskPlans*,
                                          engine::Backend& backend,
                                          engine::ExecutionContext& context,
                                          const TaskLimits&,
                                          const RunHooks& hooks) const {
    const engine::diffusion::GenerateParams params = parse_generate_params(job.params_json, 0);
    engine::diffusion::GenerateHooks generate_hooks;
    generate_hooks.cancel = hooks.cancel;
    generate_hooks.on_step = hooks.on_progress;
    return run_generate_job(*model_, backend, context, prompt_of_input(stored_input), params,
                            generate_hooks);
}

void GenerateModel::describe(ModelDescription& description) const {
    description.prompts = model_->encoder->vocabulary();
    description.width = description.height = model_->unet->config().sample_size;
}

}  // namespace kiln::scheduler
