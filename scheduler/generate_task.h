// The generate task: a diffusion UNet with its prompt encoder and noise schedule, from a
// prompt to `count` images. Params and limits as parse_generate_params (generate_job.h); the
// stored input is {"prompt": ...}; plans are compiled per job (none kept between jobs).
#pragma once

#include <memory>

#include "engine/diffusion/diffusion_model.h"
#include "scheduler/task.h"

namespace kiln::scheduler {

class GenerateModel final : public TaskModel {
  public:
    explicit GenerateModel(std::shared_ptr<const engine::diffusion::DiffusionModel> model);

    TaskKind kind() const override { return TaskKind::GENERATE; }
    size_t memory_bytes() const override;
    Admission admit(const std::string& params_json,
                    const TaskInput& input,
                    const engine::Backend& backend,
                    const TaskLimits& limits) const override;
    std::shared_ptr<TaskPlans> make_plans(engine::Backend& backend,
                                          engine::ExecutionContext& context) const override;
    std::vector<RunOutput> run(const Job& job,
                               const std::vector<uint8_t>& stored_input,
                               TaskPlans* plans,
                               engine::Backend& backend,
                               engine::ExecutionContext& context,
                               const TaskLimits& limits,
                               const RunHooks& hooks) const override;
    void describe(ModelDescription& description) const override;

    const engine::diffusion::DiffusionModel& model() const { return *model_; }

  private:
    std::shared_ptr<const engine::diffusion::DiffusionModel> model_;
};

}  // namespace kiln::scheduler
