#include "engine/diffusion/diffusion_model.h"

#include "core/error.h"
#include "core/small_file.h"
#include "weights/diffusers_unet.h"

namespace kiln::engine::diffusion {

namespace fs = std::filesystem;

std::unique_ptr<DiffusionModel> load_diffusion_model(const fs::path& dir) {
    std::error_code ec;
    auto model = std::make_unique<DiffusionModel>();
    const fs::path table = dir / "class_embeddings.safetensors";
    if (!fs::is_regular_file(table, ec)) {
        if (fs::is_directory(dir / "text_encoder", ec)) {
            throw core::Error(core::ErrorCode::UNSUPPORTED,
                              dir.string() +
                                  ": a text-encoder pipeline; kiln does not run the CLIP "
                                  "text encoder and VAE yet (class-table models only)");
        }
        throw core::Error(core::ErrorCode::NOT_FOUND,
                          dir.string() + ": no class_embeddings.safetensors");
    }
    model->encoder = std::make_unique<ClassTableEncoder>(table);
    weights::UNetFiles files = weights::load_unet(dir);
    if (files.config.cross_attention_dim != model->encoder->width()) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          dir.string() + ": the prompt table's width (" +
                              std::to_string(model->encoder->width()) +
                              ") differs from the UNet's cross_attention_dim (" +
                              std::to_string(files.config.cross_attention_dim) + ")");
    }
    model->unet = std::make_unique<engine::UNet2DCondition>(std::move(files.config),
                                                            std::move(files.weights));
    for (const fs::path& p :
         {dir / "scheduler_config.json", dir / "scheduler" / "scheduler_config.json"}) {
        if (fs::is_regular_file(p, ec)) {
            model->schedule = parse_schedule_config(core::read_small_file(p), p.string());
            break;
        }
    }
    return model;
}

}  // namespace kiln::engine::diffusion
