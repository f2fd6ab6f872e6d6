// Generation jobs (models with task "generate"): their parameters, the input they keep (the
// prompt, for retries) and the run itself on a worker's execution context.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/diffusion/diffusion_model.h"
#include "engine/diffusion/generation.h"
#include "scheduler/job_runner.h"

namespace kiln::scheduler {

// A generate job's "params": steps (1..1000, default 30), sampler (ddim, ddpm, euler,
// euler_karras; default ddim), guidance (0..50, default 3), seed (0..2^53, default: random,
// written back into the stored params so a retry makes the same images), count (1..16,
// default 1), height and width (default: the model's). Unknown keys are refused.
// Throws SchedulerError(INVALID_PARAMS) naming the parameter.
engine::diffusion::GenerateParams parse_generate_params(const std::string& params_json,
                                                        uint64_t random_seed);
// params_json with the seed actually used.
std::string with_seed(const std::string& params_json, uint64_t seed);

// What a generate job keeps as its input: {"prompt": "..."} as JSON bytes.
std::vector<uint8_t> generate_input_bytes(const std::string& prompt);
// core::Error(BAD_FILE) when the bytes are not such a document.
std::string prompt_of_input(const std::vector<uint8_t>& bytes);

// Checks the prompt and parameters against the model before the job is accepted:
// SchedulerError(INVALID_PARAMS) with the model's message (for example the prompts it knows).
void admit_generate(const engine::diffusion::DiffusionModel& model,
                    const std::string& prompt,
                    const engine::diffusion::GenerateParams& params);

// One PNG per image (gray or RGB), with a gallery thumbnail (the image itself up to 256 px).
// Throws kiln::core::Error(CANCELLED) between steps when hooks.cancel becomes true.
std::vector<RunOutput> run_generate_job(const engine::diffusion::DiffusionModel& model,
                                        engine::Backend& backend,
                                        engine::ExecutionContext& context,
                                        const std::string& prompt,
                                        const engine::diffusion::GenerateParams& params,
                                        const engine::diffusion::GenerateHooks& hooks);

}  // namespace kiln::scheduler
