#include "engine/diffusion/generation.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"
#include "engine/diffusion/philox_noise.h"

namespace kiln::diffusion {

namespace {

void require(bool ok, const std::string& what) {
    if (!ok)
        throw Error(ErrorCode::INVALID_ARGUMENT, what);
}

}  // namespace

void validate(const GenerateParams& p, const engine::UNet2DCondition& unet) {
    require(p.steps >= 1 && p.steps <= 1000, "steps must be between 1 and 1000");
    require(std::isfinite(p.guidance) && p.guidance >= 0.0f && p.guidance <= 50.0f,
            "guidance must be between 0 and 50");
    require(p.count >= 1 && p.count <= 64, "count must be between 1 and 64");
    const int m = unet.size_multiple();
    for (int side : {p.height, p.width}) {
        require(side == 0 || (side > 0 && side <= 256 && side % m == 0),
                "height and width must be multiples of " + std::to_string(m) + " up to 256");
    }
}

UNetRunner::UNetRunner(const engine::UNet2DCondition& unet,
                       engine::Backend& backend,
                       engine::ExecutionContext& context,
                       int h,
                       int w,
                       int tokens)
    : unet_(unet), h_(h), w_(w), tokens_(tokens) {
    const engine::Graph graph = unet.build_graph(h, w, tokens);
    plan_ = backend.compile(graph, context);
}

void UNetRunner::predict(const float* x,
                         int batch,
                         float timestep,
                         const float* context,
                         float* eps,
                         const engine::RunControl& control) {
    const std::vector<float> one = unet_.timestep_features(timestep);
    features_.resize(one.size() * static_cast<size_t>(batch));
    for (int b = 0; b < batch; ++b)
        std::copy(one.begin(), one.end(),
                  features_.begin() + static_cast<std::ptrdiff_t>(b * one.size()));
    const float* inputs[3] = {x, features_.data(), context};
    engine::run_traced(*plan_, inputs, eps, batch, control, "unet");
}

Latents run_sampler(UNetRunner& runner,
                    const Sampler& sampler,
                    Latents x,
                    const std::vector<float>& cond,
                    const std::vector<float>& uncond,
                    float guidance,
                    uint64_t seed,
                    const GenerateHooks& hooks) {
    const int count = x.count;
    const size_t image = x.image_floats();
    const size_t ctx_size = uncond.size();
    require(cond.size() == ctx_size * static_cast<size_t>(count),
            "one prompt encoding per image is needed");
    const bool cfg = guidance > 1.0f;
    const int batch = cfg ? 2 * count : count;
    // Model inputs: [uncond images; cond images] with guidance, the cond images alone without.
    std::vector<float> context;
    if (cfg) {
        for (int k = 0; k < count; ++k)
            context.insert(context.end(), uncond.begin(), uncond.end());
    }
    context.insert(context.end(), cond.begin(), cond.end());
    std::vector<float> model_in(image * static_cast<size_t>(batch));
    std::vector<float> eps(model_in.size());
    std::vector<float> noise(x.data.size());
    const int total = sampler.steps();
    if (hooks.on_latents)
        hooks.on_latents(0, x.data);
    engine::RunControl control;
    control.cancel = hooks.cancel;
    control.trace = hooks.trace;
    for (int i = 0; i < total; ++i) {
        if (hooks.cancel && hooks.cancel->load(std::memory_order_relaxed))
            throw Error(ErrorCode::CANCELLED, "cancelled");
        engine::TraceRange range(hooks.trace, "step " + std::to_string(i + 1), "step");
        const float divisor = sampler.input_divisor(i);
        for (size_t k = 0; k < x.data.size(); ++k) {
            const float v = x.data[k] / divisor;
            model_in[k] = v;
            if (cfg)
                model_in[k + x.data.size()] = v;
        }
        runner.predict(model_in.data(), batch, sampler.timesteps()[static_cast<size_t>(i)],
                       context.data(), eps.data(), control);
        if (cfg) {
            apply_guidance(eps.data(), eps.data() + x.data.size(),
                           static_cast<int64_t>(x.data.size()), guidance);
        }
        if (sampler.needs_noise(i)) {
            for (int k = 0; k < count; ++k) {
                for (size_t j = 0; j < image; ++j) {
                    noise[static_cast<size_t>(k) * image + j] = philox_normal(
                        seed, static_cast<uint32_t>(k), static_cast<uint32_t>(i + 1), j);
                }
            }
        }
        sampler.step(i, eps.data(), x.data.data(), static_cast<int64_t>(x.data.size()),
                     noise.data());
        if (hooks.on_latents)
            hooks.on_latents(i + 1, x.data);
        if (hooks.on_step)
            hooks.on_step(i + 1, total);
    }
    return x;
}

Latents generate(const DiffusionModel& model,
                 engine::Backend& backend,
                 engine::ExecutionContext& context,
                 const std::string& prompt,
                 const GenerateParams& params,
                 const GenerateHooks& hooks) {
    const engine::UNet2DCondition& unet = *model.unet;
    validate(params, unet);
    const std::vector<float> cond_one = model.encoder->encode(prompt);
    const std::vector<float> uncond = model.encoder->encode("");
    std::vector<float> cond;
    for (int k = 0; k < params.count; ++k)
        cond.insert(cond.end(), cond_one.begin(), cond_one.end());

    const Sampler sampler(params.sampler, model.schedule, params.steps);
    Latents x;
    x.count = params.count;
    x.h = params.height ? params.height : unet.config().sample_size;
    x.w = params.width ? params.width : unet.config().sample_size;
    x.c = unet.config().in_channels;
    x.data.resize(x.image_floats() * static_cast<size_t>(x.count));
    const float sigma = sampler.init_noise_sigma();
    for (int k = 0; k < x.count; ++k) {
        for (size_t j = 0; j < x.image_floats(); ++j) {
            x.data[static_cast<size_t>(k) * x.image_floats() + j] =
                philox_normal(params.seed, static_cast<uint32_t>(k), 0, j) * sigma;
        }
    }
    UNetRunner runner(unet, backend, context, x.h, x.w, model.encoder->tokens());
    return run_sampler(runner, sampler, std::move(x), cond, uncond, params.guidance, params.seed,
                       hooks);
}

std::vector<uint8_t> to_uint8(const float* v, size_t n) {
    std::vector<uint8_t> out(n);
    for (size_t i = 0; i < n; ++i) {
        const float u = std::clamp(v[i] / 2.0f + 0.5f, 0.0f, 1.0f) * 255.0f;
        out[i] = static_cast<uint8_t>(std::nearbyint(u));
    }
    return out;
}

}  // namespace kiln::diffusion
