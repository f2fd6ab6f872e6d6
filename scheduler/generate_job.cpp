#include "scheduler/generate_job.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/diffusion/image_grid.h"
#include "image/image.h"
#include "scheduler/scheduler_error.h"
#include "scheduler/thumbnail.h"

namespace kiln::scheduler {

using nlohmann::json;

namespace {

[[noreturn]] void invalid(const std::string& message) {
    throw SchedulerError(SchedulerCode::INVALID_PARAMS, message);
}

double number(const json& j, const char* name, double min, double max) {
    const auto it = j.find(name);
    if (!it->is_number() || it->get<double>() < min || it->get<double>() > max) {
        invalid(std::string("\"") + name + "\" must be a number from " + json(min).dump() + " to " +
                json(max).dump());
    }
    return it->get<double>();
}

int integer(const json& j, const char* name, int min, int max) {
    const auto it = j.find(name);
    if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max) {
        invalid(std::string("\"") + name + "\" must be an integer from " + std::to_string(min) +
                " to " + std::to_string(max));
    }
    return static_cast<int>(it->get<int64_t>());
}

json parse_object(const std::string& text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        invalid("the parameters must be an object");
    return j;
}

}  // namespace

engine::diffusion::GenerateParams parse_generate_params(const std::string& params_json,
                                                        uint64_t random_seed) {
    const json j = parse_object(params_json);
    for (const auto& [key, value] : j.items()) {
        static const char* const known[] = {"steps", "sampler", "guidance", "seed",
                                            "count", "height",  "width"};
        if (std::find_if(std::begin(known), std::end(known),
                         [&](const char* k) { return key == k; }) == std::end(known)) {
            invalid("unknown parameter \"" + key +
                    "\" (generate takes steps, sampler, guidance, seed, count, height, width)");
        }
    }
    engine::diffusion::GenerateParams p;
    if (j.contains("steps"))
        p.steps = integer(j, "steps", 1, 1000);
    if (j.contains("sampler")) {
        if (!j["sampler"].is_string())
            invalid("\"sampler\" must be ddim, ddpm, euler or euler_karras");
        try {
            p.sampler = engine::diffusion::parse_sampler(j["sampler"].get<std::string>());
        } catch (const core::Error& e) {
            invalid(e.what());
        }
    }
    if (j.contains("guidance"))
        p.guidance = static_cast<float>(number(j, "guidance", 0.0, 50.0));
    p.seed = random_seed & ((uint64_t{1} << 53) - 1);
    if (j.contains("seed")) {
        const auto& s = j["seed"];
        if (!s.is_number_unsigned() || s.get<uint64_t>() > (uint64_t{1} << 53))
            invalid("\"seed\" must be an integer from 0 to 2^53");
        p.seed = s.get<uint64_t>();
    }
    if (j.contains("count"))
        p.count = integer(j, "count", 1, 16);
    if (j.contains("height"))
        p.height = integer(j, "height", 1, 256);
    if (j.contains("width"))
        p.width = integer(j, "width", 1, 256);
    return p;
}

std::string with_seed(const std::string& params_json, uint64_t seed) {
    json j = parse_object(params_json);
    j["seed"] = seed;
    return j.dump();
}

std::vector<uint8_t> generate_input_bytes(const std::string& prompt) {
    const std::string text = json{{"prompt", prompt}}.dump();
    return std::vector<uint8_t>(text.begin(), text.end());
}

std::string prompt_of_input(const std::vector<uint8_t>& bytes) {
    const json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
        throw core::Error(core::ErrorCode::BAD_FILE, "the job's stored prompt is unreadable");
    return j["prompt"].get<std::string>();
}

void admit_generate(const engine::diffusion::DiffusionModel& model,
                    const std::string& prompt,
                    const engine::diffusion::GenerateParams& params) {
    if (prompt.size() > 1000)
        throw SchedulerError(SchedulerCode::INVALID_PARAMS, "the prompt is longer than 1000 bytes",
                             InputPart::PROMPT);
    try {
        engine::diffusion::validate(params, *model.unet);
        model.encoder->encode(prompt);
    } catch (const core::Error& e) {
        if (e.code() == core::ErrorCode::INVALID_ARGUMENT)
            invalid(e.what());
        throw;
    }
}

std::vector<RunOutput> run_generate_job(const engine::diffusion::DiffusionModel& model,
                                        engine::Backend& backend,
                                        engine::ExecutionContext& context,
                                        const std::string& prompt,
                                        const engine::diffusion::GenerateParams& params,
                                        const engine::diffusion::GenerateHooks& hooks) {
    const engine::diffusion::Latents latents =
        engine::diffusion::generate(model, backend, context, prompt, params, hooks);
    std::vector<RunOutput> outputs;
    for (int k = 0; k < latents.count; ++k) {
        const image::Image picture = engine::diffusion::latents_to_image(latents, k);
        RunOutput out;
        out.png = image::encode_png(picture);
        out.thumbnail_png = image::encode_png(make_thumbnail(picture, 256));
        out.width = picture.width;
        out.height = picture.height;
        outputs.push_back(std::move(out));
    }
    return outputs;
}

}  // namespace kiln::scheduler
