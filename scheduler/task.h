// The task interface: what one kind of job (upscale, generate, and the kinds to come) does at
// each step of its life. The scheduler is written once against it; a task kind supplies a
// TaskModel (a model of that kind, loaded) that parses and validates a submission, admits it
// (limits, memory estimate), runs it on a worker (progress, cancel) and describes itself.
//
// Adding a task kind: a TaskKind value (job.h) and its name (job.cpp), then its row in
// task.cpp (the registry task
// that loads as it in load_task_model(), its stored input's media type), and a TaskModel
// subclass in its own file.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/backend.h"
#include "image/image.h"
#include "scheduler/job.h"
#include "weights/registry.h"

namespace kiln::scheduler {

// A submission's input as the client sent it, before any check.
struct TaskInput {
    std::vector<uint8_t> image;         // upscale
    std::optional<std::string> prompt;  // generate
};

// What admission decided; the job keeps it.
struct Admission {
    std::string params_json;  // the params the run uses (e.g. with the seed it chose)
    int tile = -1;            // upscale: the requested tile (-1: from the memory budget)
    int width = 0, height = 0;
    // The bytes kept as the job's input: what the worker reads back, and what a retry or a
    // restart re-runs from. Queued jobs keep only these (see Scheduler::admit for why the
    // decoded image is not carried to the worker).
    std::vector<uint8_t> stored_input;
};

// What admission and a run may use of the scheduler's configuration.
struct TaskLimits {
    size_t memory_budget = 0;
    image::DecodeLimits decode;
};

// Compiled state a worker keeps between jobs of one model (plans); destroyed only on the thread
// of the worker whose execution context it was built on.
class TaskPlans {
  public:
    virtual ~TaskPlans() = default;
};

struct RunOutput {
    std::vector<uint8_t> png;
    std::vector<uint8_t> thumbnail_png;  // longer side at most 256 px (gallery)
    int width = 0, height = 0;
};

struct RunHooks {
    const std::atomic<bool>* cancel = nullptr;
    std::function<void(int done, int total)> on_progress;
};

// How a model describes itself to clients (GET /v1/models, `kiln models`).
struct ModelDescription {
    std::string name;
    TaskKind task = TaskKind::UPSCALE;
    std::string arch;
    int64_t parameters = 0;
    int scale = 0;                     // upscale
    std::string family;                // upscale: weights::ModelInfo::family
    std::string noise;                 // upscale: weights::ModelInfo::noise
    std::vector<std::string> prompts;  // generate: the prompts it knows
    int width = 0, height = 0;         // generate: the default output size
};

// One model loaded for its task kind, shared by every worker and admission; const and
// thread-safe except where a method says otherwise.
class TaskModel {
  public:
    virtual ~TaskModel() = default;
    virtual TaskKind kind() const = 0;
    // Bytes the loaded weights hold (the model cache's budget).
    virtual size_t memory_bytes() const = 0;

    // Parses and validates params (a JSON object's text) and the input, checks limits and the
    // memory estimate. Throws SchedulerError (INVALID_PARAMS, MISSING_INPUT, TOO_LARGE,
    // UNSUPPORTED_INPUT). Runs on the submitting thread; it estimates, builds no plan.
    virtual Admission admit(const std::string& params_json,
                            const TaskInput& input,
                            const engine::Backend& backend,
                            const TaskLimits& limits) const = 0;

    // The plans a worker keeps for this model on `context`; null when the kind keeps none.
    virtual std::shared_ptr<TaskPlans> make_plans(engine::Backend& backend,
                                                  engine::ExecutionContext& context) const = 0;
    // Runs `job` from its stored input on a worker. `plans` is this worker's (from
    // make_plans, or fresh when plans are not reused); only this worker uses it meanwhile.
    // Throws core::Error: CANCELLED when hooks.cancel becomes true, OUT_OF_MEMORY, BAD_FILE.
    virtual std::vector<RunOutput> run(const Job& job,
                                       const std::vector<uint8_t>& stored_input,
                                       TaskPlans* plans,
                                       engine::Backend& backend,
                                       engine::ExecutionContext& context,
                                       const TaskLimits& limits,
                                       const RunHooks& hooks) const = 0;

    // Fills what the loaded model knows beyond the registry's listing (e.g. prompts).
    virtual void describe(ModelDescription& description) const = 0;
};

// The task kind of the model `name`, from the registry's listing (nothing is loaded).
// Throws core::Error(NOT_FOUND).
TaskKind task_kind_of(weights::ModelRegistry& registry, const std::string& name);

// Loads the model `name` as the task kind its files make it (the registry's listing says
// which). Throws core::Error (NOT_FOUND listing the names, BAD_FILE, UNSUPPORTED).
std::shared_ptr<const TaskModel> load_task_model(weights::ModelRegistry& registry,
                                                 const std::string& name);

// The media type of a job's stored input (GET /v1/jobs/{id}/input) for its task kind.
std::string stored_input_content_type(TaskKind kind, const std::vector<uint8_t>& stored_input);

}  // namespace kiln::scheduler
