// kiln forward -m MODEL in.npy out.npy: the raw network on a float NHWC array (no padding,
// no tiling, no clamping), for parity tests against reference implementations. Networks of
// unpadded convolutions (UpConv7, CUNet) give an output smaller than scale x the input.
// Networks whose published forward pads with zeros to their size multiple and crops
// (OmniSR: edge rule ZERO) are run so, as that forward is.
#include <spdlog/spdlog.h>

#include "app/commands.h"
#include "app/engine_setup.h"
#include "core/error.h"
#include "engine/pipeline/float_image.h"
#include "image/npy.h"

namespace kiln::app {

namespace {

struct ForwardArgs {
    EngineOptions engine;
    std::string model;
    std::string input;
    std::string output;
};

int run_forward(const ForwardArgs& args) {
    const image::NpyArray in = image::read_npy(args.input);
    std::vector<int64_t> shape = in.shape;
    if (shape.size() == 4 && shape[0] == 1)
        shape.erase(shape.begin());
    if (in.dtype != "<f4" || shape.size() != 3 || shape[2] != 3) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          args.input + ": expected float32 NHWC [1, H, W, 3] or [H, W, 3]");
    }
    LoadedEngine loaded = load_engine(args.engine, args.model);
    // A network of unpadded convolutions gives (H - 2 border) x (W - 2 border), scaled.
    const int b = loaded.model->border();
    const int h = static_cast<int>(shape[0]) - 2 * b;
    const int w = static_cast<int>(shape[1]) - 2 * b;
    if (h <= 0 || w <= 0) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          args.input + ": " + loaded.model->arch() + " needs more than " +
                              std::to_string(2 * b) + " pixels a side");
    }
    const engine::Model& model = *loaded.model;
    const bool pads = model.edge_mode() == engine::EdgeMode::ZERO && b == 0;
    const int ph = pads ? model.window_for(h) : h;
    const int pw = pads ? model.window_for(w) : w;
    auto plan = loaded.backend->compile(model.build_graph(ph, pw), *loaded.context);
    spdlog::debug("plan:\n{}", plan->describe());
    const int s = model.scale();
    engine::FloatImage x(static_cast<int>(shape[0]), static_cast<int>(shape[1]), 3);
    x.data = in.as_f32();
    if (pads)
        x = engine::zero_pad(x, 0, ph - h, 0, pw - w);
    engine::FloatImage y(ph * s, pw * s, 3);
    plan->run(x.data.data(), y.data.data(), {});
    if (pads)
        y = engine::crop(y, 0, 0, h * s, w * s);
    const std::vector<float>& out = y.data;
    std::vector<int64_t> out_shape = {int64_t{h} * s, int64_t{w} * s, 3};
    if (in.shape.size() == 4)
        out_shape.insert(out_shape.begin(), 1);
    image::write_npy(args.output, image::NpyArray::from_f32(out_shape, out));
    spdlog::info("wrote {} ({}x{}x3), plan peak {} MiB", args.output, w * s, h * s,
                 plan->peak_bytes() >> 20);
    return 0;
}

}  // namespace

Runner register_forward(CLI::App& app) {
    auto args = std::make_shared<ForwardArgs>();
    CLI::App* cmd = app.add_subcommand("forward", "run the raw network on a float .npy array");
    cmd->add_option("-m,--model", args->model, "model name")->required();
    cmd->add_option("input", args->input, "float32 NHWC .npy, [1,H,W,3] or [H,W,3]")->required();
    cmd->add_option("output", args->output, "output .npy")->required();
    add_engine_options(*cmd, args->engine);
    return [cmd, args]() { return cmd->parsed() ? run_forward(*args) : -1; };
}

}  // namespace kiln::app
