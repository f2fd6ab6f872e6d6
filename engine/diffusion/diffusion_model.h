// A generation model as kiln serves it: the UNet, the prompt encoder and the noise schedule,
// loaded from one folder:
//   config.json + diffusion_pytorch_model.safetensors   the UNet (or the same under unet/)
//   class_embeddings.safetensors                         the prompt table (class-conditional)
//   scheduler_config.json                                optional (or scheduler/...); SD's
//                                                        defaults otherwise
// A full SD pipeline folder (text_encoder/, vae/) is refused for now with a message: the CLIP
// text encoder and the VAE decoder are later work and slot in as a PromptEncoder and an
// image decoder.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "engine/diffusion/prompt_encoder.h"
#include "engine/diffusion/sampler.h"
#include "engine/models/unet2d_condition.h"

namespace kiln::engine::diffusion {

struct DiffusionModel {
    std::unique_ptr<engine::UNet2DCondition> unet;
    std::unique_ptr<PromptEncoder> encoder;
    ScheduleConfig schedule;
};

// Throws kiln::core::Error (NOT_FOUND, BAD_FILE, UNSUPPORTED) naming the file and the problem.
std::unique_ptr<DiffusionModel> load_diffusion_model(const std::filesystem::path& dir);

}  // namespace kiln::engine::diffusion
