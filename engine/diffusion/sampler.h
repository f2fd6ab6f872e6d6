// Noise schedules and samplers with diffusers' conventions (DDPMScheduler, DDIMScheduler,
// EulerDiscreteScheduler with and without Karras sigmas), written from their documented
// formulas; docs/diffusion.md gives each one. All arithmetic is fp32 in diffusers' order,
// so trajectories agree with PyTorch to rounding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::engine::diffusion {

// scheduler_config.json's fields that kiln reads (others must have their SD defaults).
struct ScheduleConfig {
    int num_train_timesteps = 1000;
    float beta_start = 0.00085f;
    float beta_end = 0.012f;
    std::string beta_schedule = "scaled_linear";  // or "linear"
    int steps_offset = 1;
    bool set_alpha_to_one = false;  // DDIM's alpha before the first train step
    bool clip_sample = false;
};

// Parses a diffusers scheduler_config.json; core::Error(UNSUPPORTED) names a field whose value
// kiln does not implement (prediction_type other than epsilon, spacing other than leading).
ScheduleConfig parse_schedule_config(const std::string& json_text, const std::string& origin);

// cumprod(1 - betas) as torch computes it on the CPU (fp32 factors, double accumulator),
// betas as torch.linspace in fp32 ("scaled_linear": the square of a linspace of roots).
std::vector<float> alphas_cumprod(const ScheduleConfig& config);

enum class SamplerKind { DDPM, DDIM, EULER, EULER_KARRAS };

// "ddpm", "ddim", "euler", "euler_karras"; core::Error(INVALID_ARGUMENT) listing them otherwise.
SamplerKind parse_sampler(const std::string& name);
const char* sampler_name(SamplerKind kind);

// One sampling run's schedule: the model is evaluated at timesteps()[i] on
// x / input_divisor(i), then step(i) moves x with the prediction.
class Sampler {
  public:
    Sampler(SamplerKind kind, const ScheduleConfig& config, int steps);

    SamplerKind kind() const { return kind_; }
    int steps() const { return static_cast<int>(timesteps_.size()); }
    const std::vector<float>& timesteps() const { return timesteps_; }
    // Euler's sigmas (steps + 1, the last 0); empty for DDPM and DDIM.
    const std::vector<float>& sigmas() const { return sigmas_; }
    // The initial latent is unit noise times this.
    float init_noise_sigma() const { return init_noise_sigma_; }
    // The model sees x / input_divisor(i): sqrt(sigma^2 + 1) for Euler, 1 otherwise.
    float input_divisor(int i) const;
    // x <- x_{i+1} from x_i and the predicted noise eps (n floats). DDPM adds
    // sqrt(variance) * noise[k] (noise: n unit normals; ignored by the other samplers).
    void step(int i, const float* eps, float* x, int64_t n, const float* noise) const;
    // Whether step(i) uses noise (DDPM, except at the last step).
    bool needs_noise(int i) const;

  private:
    SamplerKind kind_;
    ScheduleConfig config_;
    std::vector<float> alphas_cumprod_;
    std::vector<float> timesteps_;
    std::vector<int> int_timesteps_;  // DDPM and DDIM
    std::vector<float> sigmas_;
    int step_ratio_ = 1;
    float init_noise_sigma_ = 1.0f;
};

// Classifier-free guidance: eps = eps_u + g * (eps_c - eps_u), n floats, into eps_u.
void apply_guidance(float* eps_uncond, const float* eps_cond, int64_t n, float guidance);

}  // namespace kiln::engine::diffusion
