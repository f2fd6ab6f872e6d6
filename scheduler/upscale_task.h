// The upscale task: a super-resolution model (RRDBNet, SRVGGNetCompact, ...) over one image.
// Params: {"tile": 0..8192} (0: whole image; omitted: from the memory budget). The input is a
// PNG or JPEG file, checked at admission (header limits, a full decode, a plan that fits the
// memory budget); each worker keeps an Upscaler (its compiled plans) per model.
#pragma once

#include <memory>

#include "engine/models/model.h"
#include "scheduler/task.h"

namespace kiln::scheduler {

class UpscaleModel final : public TaskModel {
  public:
    explicit UpscaleModel(std::shared_ptr<const engine::Model> model);

    TaskKind kind() const override { return TaskKind::UPSCALE; }
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

    const engine::Model& model() const { return *model_; }

  private:
    std::shared_ptr<const engine::Model> model_;
};

// The "tile" of an upscale job's params (a JSON object's text): -1 when absent. Throws
// SchedulerError(INVALID_PARAMS) for any other key or a value outside 0..8192.
int parse_upscale_params(const std::string& params_json);

}  // namespace kiln::scheduler
