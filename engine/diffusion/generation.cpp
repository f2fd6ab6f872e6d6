#include "engine/diffusion/generation.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <thread>

#include "core/error.h"
#include "engine/diffusion/philox_noise.h"

namespace kiln::engine::diffusion {

namespace {

void require(bool ok, const std::string& what) {
    if (!ok)
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, what);
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
    if (backend.kind() == engine::BackendKind::CPU && context.threads() > 1) {
        for (int lane = 0; lane < context.threads(); ++lane) {
            lane_contexts_.push_back(backend.create_context(engine::ContextOptions{1}));
            lane_plans_.push_back(backend.compile(graph, *lane_contexts_.back()));
        }
    }
}

size_t UNetRunner::peak_bytes() const {
    size_t bytes = plan_->peak_bytes();
    for (const auto& p : lane_plans_)
        bytes += p->peak_bytes();
    return bytes;
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
    // Traced and profiled runs record per-op times in one list: those stay on one plan.
    const bool split = batch > 1 && !lane_plans_.empty() && !control.trace && !control.op_times;
    if (!split) {
        engine::run_traced(*plan_, inputs, eps, batch, control, "unet");
        return;
    }
    const int lanes = std::min(batch, static_cast<int>(lane_plans_.size()));
    const size_t in_floats = static_cast<size_t>(h_) * w_ * unet_.config().in_channels;
    const size_t out_floats = static_cast<size_t>(h_) * w_ * unet_.config().out_channels;
    const size_t ctx_floats = static_cast<size_t>(tokens_) * unet_.config().cross_attention_dim;
    engine::RunControl lane_control;
    lane_control.cancel = control.cancel;  // progress callbacks are not made from lanes
    std::vector<std::exception_ptr> errors(static_cast<size_t>(lanes));
    const auto run_lane = [&](int lane) {
        // Samples [first, last) of the batch.
        const int first = batch * lane / lanes, last = batch * (lane + 1) / lanes;
        const auto n = static_cast<size_t>(first);
        const float* lane_inputs[3] = {x + n * in_floats, features_.data() + n * one.size(),
                                       context + n * ctx_floats};
        try {
            lane_plans_[static_cast<size_t>(lane)]->run_batch(lane_inputs, eps + n * out_floats,
                                                              last - first, lane_control);
        } catch (...) {
            errors[static_cast<size_t>(lane)] = std::current_exception();
        }
    };
    std::vector<std::thread> threads;
    for (int lane = 1; lane < lanes; ++lane)
        threads.emplace_back(run_lane, lane);
    run_lane(0);
    for (std::thread& t : threads)
        t.join();
    for (const std::exception_ptr& e : errors) {
        if (e)
            std::rethrow_exception(e);
    }
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
            throw core::Error(core::ErrorCode::CANCELLED, "cancelled");
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

}  // namespace kiln::engine::diffusion
