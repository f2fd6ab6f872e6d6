#include "engine/diffusion/sampler.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_depth.h"

namespace kiln::engine::diffusion {

using nlohmann::json;

namespace {

// torch.linspace in fp32 exactly as PyTorch's CPU kernel produces it (the reference the
// schedules are checked against): the first half counts up from start, the second half down
// from end, in vectors of 8 whose first element is one fused multiply-add and whose others
// add j * step to it; a tail shorter than a vector is computed element by element.
std::vector<float> linspace(float start, float end, int n) {
    std::vector<float> out(static_cast<size_t>(n));
    if (n == 1) {
        out[0] = start;
        return out;
    }
    const float step = (end - start) / static_cast<float>(n - 1);
    const int half = n / 2;
    constexpr int kVector = 8;
    int i = 0;
    for (; i + kVector <= n; i += kVector) {
        const float base = i < half ? std::fma(step, static_cast<float>(i), start)
                                    : std::fma(-step, static_cast<float>(n - i - 1), end);
        for (int j = 0; j < kVector; ++j)
            out[static_cast<size_t>(i + j)] = base + static_cast<float>(j) * step;
    }
    for (; i < n; ++i) {
        out[static_cast<size_t>(i)] = i < half ? start + step * static_cast<float>(i)
                                               : end - step * static_cast<float>(n - 1 - i);
    }
    return out;
}

[[noreturn]] void unsupported(const std::string& origin, const char* field, const json& value) {
    throw core::Error(
        core::ErrorCode::UNSUPPORTED,
        origin + ": scheduler field '" + field + "' = " + value.dump() + " is not implemented");
}

// diffusers' EulerDiscreteScheduler._sigma_to_t: the (fractional) timestep whose
// interpolated log-sigma is log(sigma).
double sigma_to_t(double sigma, const std::vector<double>& log_sigmas) {
    const double log_sigma = std::log(std::max(sigma, 1e-10));
    const int n = static_cast<int>(log_sigmas.size());
    int low = 0;
    for (int i = 0; i < n; ++i) {
        if (log_sigma - log_sigmas[static_cast<size_t>(i)] >= 0)
            low = i;  // the last index whose log-sigma is at most log(sigma)
    }
    low = std::min(low, n - 2);
    const double lo = log_sigmas[static_cast<size_t>(low)];
    const double hi = log_sigmas[static_cast<size_t>(low + 1)];
    const double w = std::clamp((lo - log_sigma) / (lo - hi), 0.0, 1.0);
    return (1.0 - w) * low + w * (low + 1);
}

}  // namespace

ScheduleConfig parse_schedule_config(const std::string& json_text, const std::string& origin) {
    if (core::json_nesting_depth(json_text, core::max_json_depth) > core::max_json_depth) {
        throw core::Error(
            core::ErrorCode::BAD_FILE,
            origin + ": nests deeper than " + std::to_string(core::max_json_depth) + " levels");
    }
    json j;
    try {
        j = json::parse(json_text);
    } catch (const json::exception& e) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          origin + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object())
        throw core::Error(core::ErrorCode::BAD_FILE, origin + ": not a JSON object");
    ScheduleConfig c;
    try {
        c.num_train_timesteps = j.value("num_train_timesteps", c.num_train_timesteps);
        c.beta_start = j.value("beta_start", c.beta_start);
        c.beta_end = j.value("beta_end", c.beta_end);
        c.beta_schedule = j.value("beta_schedule", c.beta_schedule);
        c.steps_offset = j.value("steps_offset", c.steps_offset);
        c.set_alpha_to_one = j.value("set_alpha_to_one", c.set_alpha_to_one);
        c.clip_sample = j.value("clip_sample", c.clip_sample);
    } catch (const json::exception& e) {
        throw core::Error(core::ErrorCode::BAD_FILE, origin + ": " + e.what());
    }
    if (c.beta_schedule != "linear" && c.beta_schedule != "scaled_linear")
        unsupported(origin, "beta_schedule", c.beta_schedule);
    if (c.num_train_timesteps < 2 || c.num_train_timesteps > 100000)
        throw core::Error(core::ErrorCode::BAD_FILE, origin + ": num_train_timesteps out of range");
    if (c.steps_offset < 0 || c.steps_offset >= c.num_train_timesteps)
        throw core::Error(core::ErrorCode::BAD_FILE, origin + ": steps_offset out of range");
    const std::pair<const char*, json> fixed[] = {
        {"prediction_type", "epsilon"},    {"timestep_spacing", "leading"},
        {"trained_betas", nullptr},        {"thresholding", false},
        {"rescale_betas_zero_snr", false}, {"variance_type", "fixed_small"},
    };
    for (const auto& [name, value] : fixed) {
        const auto it = j.find(name);
        if (it != j.end() && *it != value)
            unsupported(origin, name, *it);
    }
    return c;
}

std::vector<float> alphas_cumprod(const ScheduleConfig& config) {
    std::vector<float> betas;
    if (config.beta_schedule == "scaled_linear") {
        betas = linspace(std::sqrt(config.beta_start), std::sqrt(config.beta_end),
                         config.num_train_timesteps);
        for (float& b : betas)
            b = b * b;
    } else {
        betas = linspace(config.beta_start, config.beta_end, config.num_train_timesteps);
    }
    // torch.cumprod on the CPU accumulates fp32 in double and rounds each element.
    std::vector<float> out(betas.size());
    double product = 1.0;
    for (size_t i = 0; i < betas.size(); ++i) {
        product *= static_cast<double>(1.0f - betas[i]);
        out[i] = static_cast<float>(product);
    }
    return out;
}

SamplerKind parse_sampler(const std::string& name) {
    if (name == "ddpm")
        return SamplerKind::DDPM;
    if (name == "ddim")
        return SamplerKind::DDIM;
    if (name == "euler")
        return SamplerKind::EULER;
    if (name == "euler_karras")
        return SamplerKind::EULER_KARRAS;
    throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                      "unknown sampler '" + name + "' (ddpm, ddim, euler, euler_karras)");
}

const char* sampler_name(SamplerKind kind) {
    switch (kind) {
        case SamplerKind::DDPM:
            return "ddpm";
        case SamplerKind::DDIM:
            return "ddim";
        case SamplerKind::EULER:
            return "euler";
        case SamplerKind::EULER_KARRAS:
            return "euler_karras";
    }
    return "?";
}

Sampler::Sampler(SamplerKind kind, const ScheduleConfig& config, int steps)
    : kind_(kind), config_(config), alphas_cumprod_(alphas_cumprod(config)) {
    const int T = config.num_train_timesteps;
    if (steps < 1 || steps > T) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "steps must be between 1 and " + std::to_string(T));
    }
    // "leading" spacing: t_i = (n - 1 - i) * (T / n) + steps_offset.
    step_ratio_ = T / steps;
    for (int i = steps - 1; i >= 0; --i)
        int_timesteps_.push_back(std::min(i * step_ratio_ + config.steps_offset, T - 1));
    for (int t : int_timesteps_)
        timesteps_.push_back(static_cast<float>(t));
    if (kind == SamplerKind::DDPM || kind == SamplerKind::DDIM)
        return;

    std::vector<float> all(static_cast<size_t>(T));
    std::vector<double> log_sigmas(static_cast<size_t>(T));
    for (size_t t = 0; t < all.size(); ++t) {
        const float a = alphas_cumprod_[t];
        all[t] = std::sqrt((1.0f - a) / a);
        log_sigmas[t] = static_cast<double>(std::log(all[t]));
    }
    std::vector<double> sig;
    for (int t : int_timesteps_)
        sig.push_back(all[static_cast<size_t>(t)]);
    if (kind == SamplerKind::EULER_KARRAS) {
        // Karras et al. (2022) eq. 5, rho = 7, between the schedule's end sigmas.
        constexpr double rho = 7.0;
        const double sigma_min =
            all[static_cast<size_t>(int_timesteps_[int_timesteps_.size() - 1])];
        const double sigma_max = all[static_cast<size_t>(int_timesteps_[0])];
        const double min_inv = std::pow(sigma_min, 1.0 / rho);
        const double max_inv = std::pow(sigma_max, 1.0 / rho);
        for (int i = 0; i < steps; ++i) {
            const double ramp = steps == 1 ? 0.0 : static_cast<double>(i) / (steps - 1);
            sig[static_cast<size_t>(i)] = std::pow(max_inv + ramp * (min_inv - max_inv), rho);
        }
        timesteps_.clear();
        for (double s : sig)
            timesteps_.push_back(static_cast<float>(sigma_to_t(s, log_sigmas)));
    }
    for (double s : sig)
        sigmas_.push_back(static_cast<float>(s));
    sigmas_.push_back(0.0f);
    const float max_sigma = *std::max_element(sigmas_.begin(), sigmas_.end());
    init_noise_sigma_ = std::sqrt(max_sigma * max_sigma + 1.0f);
}

float Sampler::input_divisor(int i) const {
    if (sigmas_.empty())
        return 1.0f;
    const float sigma = sigmas_[static_cast<size_t>(i)];
    return std::sqrt(sigma * sigma + 1.0f);
}

bool Sampler::needs_noise(int i) const {
    return kind_ == SamplerKind::DDPM && int_timesteps_[static_cast<size_t>(i)] > 0;
}

void Sampler::step(int i, const float* eps, float* x, int64_t n, const float* noise) const {
    const auto at = [&](int t) { return alphas_cumprod_[static_cast<size_t>(t)]; };
    const auto clip = [&](float v) { return config_.clip_sample ? std::clamp(v, -1.0f, 1.0f) : v; };
    switch (kind_) {
        case SamplerKind::DDIM: {
            const int t = int_timesteps_[static_cast<size_t>(i)];
            const int prev = t - step_ratio_;
            const float a_t = at(t);
            const float a_prev = prev >= 0                  ? at(prev)
                                 : config_.set_alpha_to_one ? 1.0f
                                                            : alphas_cumprod_.front();
            const float sqrt_beta_t = std::sqrt(1.0f - a_t);
            const float sqrt_a_t = std::sqrt(a_t);
            const float sqrt_a_prev = std::sqrt(a_prev);
            const float dir = std::sqrt(1.0f - a_prev - 0.0f);
            for (int64_t k = 0; k < n; ++k) {
                const float x0 = clip((x[k] - sqrt_beta_t * eps[k]) / sqrt_a_t);
                x[k] = sqrt_a_prev * x0 + dir * eps[k];
            }
            return;
        }
        case SamplerKind::DDPM: {
            const int t = int_timesteps_[static_cast<size_t>(i)];
            const int prev = t - step_ratio_;
            const float a_t = at(t);
            const float a_prev = prev >= 0 ? at(prev) : 1.0f;
            const float beta_t = 1.0f - a_t;
            const float beta_prev = 1.0f - a_prev;
            const float cur_alpha = a_t / a_prev;
            const float cur_beta = 1.0f - cur_alpha;
            const float sqrt_beta_t = std::sqrt(beta_t);
            const float sqrt_a_t = std::sqrt(a_t);
            const float c0 = std::sqrt(a_prev) * cur_beta / beta_t;
            const float ct = std::sqrt(cur_alpha) * beta_prev / beta_t;
            const float variance = std::max(beta_prev / beta_t * cur_beta, 1e-20f);
            const float sd = needs_noise(i) ? std::sqrt(variance) : 0.0f;
            for (int64_t k = 0; k < n; ++k) {
                const float x0 = clip((x[k] - sqrt_beta_t * eps[k]) / sqrt_a_t);
                float v = c0 * x0 + ct * x[k];
                if (sd != 0.0f)
                    v = v + sd * noise[k];
                x[k] = v;
            }
            return;
        }
        case SamplerKind::EULER:
        case SamplerKind::EULER_KARRAS: {
            const float sigma = sigmas_[static_cast<size_t>(i)];
            const float dt = sigmas_[static_cast<size_t>(i) + 1] - sigma;
            for (int64_t k = 0; k < n; ++k) {
                const float x0 = x[k] - sigma * eps[k];
                const float d = (x[k] - x0) / sigma;
                x[k] = x[k] + d * dt;
            }
            return;
        }
    }
}

void apply_guidance(float* eps_uncond, const float* eps_cond, int64_t n, float guidance) {
    for (int64_t k = 0; k < n; ++k)
        eps_uncond[k] = eps_uncond[k] + guidance * (eps_cond[k] - eps_uncond[k]);
}

}  // namespace kiln::engine::diffusion
