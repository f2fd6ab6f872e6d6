// Sampling loops on top of a compiled UNet plan: classifier-free guidance as one batch
// [uncond...; cond...], seeded noise (philox_noise.h), progress and cancellation between steps.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/diffusion/diffusion_model.h"
#include "engine/diffusion/sampler.h"
#include "engine/models/unet2d_condition.h"
#include "engine/trace.h"

namespace kiln::engine::diffusion {

struct GenerateParams {
    SamplerKind sampler = SamplerKind::DDIM;
    int steps = 30;
    float guidance = 3.0f;  // > 1: classifier-free guidance
    uint64_t seed = 0;
    int count = 1;
    int height = 0, width = 0;  // 0: the UNet's sample_size
};

// core::Error(INVALID_ARGUMENT) naming the first parameter out of range (steps 1..1000, guidance
// 0..50, count 1..64, sizes multiples of the UNet's size multiple up to 256).
void validate(const GenerateParams& params, const engine::UNet2DCondition& unet);

struct GenerateHooks {
    const std::atomic<bool>* cancel = nullptr;  // checked before every step
    std::function<void(int done, int total)> on_step;
    // Called with the latents (all images) after init (step 0) and after every step.
    std::function<void(int step, const std::vector<float>& latents)> on_latents;
    // When set, each step is a "step" range holding the UNet's forward and op events.
    engine::Trace* trace = nullptr;
};

// Images as NHWC floats, one after another, in the model's range (about [-1, 1]).
struct Latents {
    int count = 0, h = 0, w = 0, c = 0;
    std::vector<float> data;
    size_t image_floats() const { return static_cast<size_t>(h) * w * c; }
};

// One compiled UNet plan for a sample size and context length. On a CPU context of T > 1
// threads it also keeps T one-thread plans ("lanes") and runs the samples of a batch on them
// side by side: the UNet's ~200 small ops gain little from threads inside an op, much from
// samples in parallel. Lane results equal a one-thread run bit for bit.
class UNetRunner {
  public:
    UNetRunner(const engine::UNet2DCondition& unet,
               engine::Backend& backend,
               engine::ExecutionContext& context,
               int h,
               int w,
               int tokens);
    // eps for `batch` samples at timestep t: x [batch, h, w, c], context [batch, tokens, width].
    void predict(const float* x,
                 int batch,
                 float timestep,
                 const float* context,
                 float* eps,
                 const engine::RunControl& control);
    // All plans' peak bytes (lanes included).
    size_t peak_bytes() const;
    int lanes() const { return static_cast<int>(lane_plans_.size()); }
    int h() const { return h_; }
    int w() const { return w_; }
    int channels() const { return unet_.config().in_channels; }
    int tokens() const { return tokens_; }

  private:
    const engine::UNet2DCondition& unet_;
    std::unique_ptr<engine::Plan> plan_;
    std::vector<std::unique_ptr<engine::ExecutionContext>> lane_contexts_;
    std::vector<std::unique_ptr<engine::Plan>> lane_plans_;
    int h_, w_, tokens_;
    std::vector<float> features_;  // timestep features repeated per sample
};

// Runs `sampler` from x (count images, already scaled by init_noise_sigma) with the prompt
// encodings cond (one [tokens, width] per image) and uncond (one, shared). Throws
// core::Error(CANCELLED) between steps when hooks.cancel becomes true.
Latents run_sampler(UNetRunner& runner,
                    const Sampler& sampler,
                    Latents x,
                    const std::vector<float>& cond,
                    const std::vector<float>& uncond,
                    float guidance,
                    uint64_t seed,
                    const GenerateHooks& hooks);

// The whole generation: prompt encoding, seeded initial noise (image k: philox stream 0 of
// (seed, k)), sampling. The result is in the model's range.
Latents generate(const DiffusionModel& model,
                 engine::Backend& backend,
                 engine::ExecutionContext& context,
                 const std::string& prompt,
                 const GenerateParams& params,
                 const GenerateHooks& hooks);

// diffusers' postprocessing: round(clamp(v / 2 + 0.5, 0, 1) * 255), ties to even.
std::vector<uint8_t> to_uint8(const float* v, size_t n);

}  // namespace kiln::engine::diffusion
