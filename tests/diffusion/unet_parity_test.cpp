// The UNet and the samplers on the CPU backend against PyTorch goldens written by
// tools/train_diffusion.py golden (tests/data/diffusion/manifest.json): the trained model's
// UNet output (max error <= 1e-4 of the output's largest magnitude), DDIM and Euler
// trajectories with guidance (max abs error <= 1e-3 at every one of 20 steps), and the tiny
// SD-shaped models in both namings.
#include <gtest/gtest.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/diffusion/diffusion_model.h"
#include "engine/diffusion/generation.h"
#include "tests/diffusion/test_data.h"
#include "weights/diffusers_unet.h"
#include "weights/safetensors.h"

namespace kiln::engine::diffusion {
namespace {

using test::diffusion_data;

struct Cpu {
    std::unique_ptr<engine::Backend> backend = engine::cpu::make_cpu_backend({});
    std::unique_ptr<engine::ExecutionContext> context = backend->create_context({1});
};

// Runs each sample of an NCHW batch at its own timestep; returns NCHW... as NHWC.
std::vector<float> run_unet(const engine::UNet2DCondition& unet,
                            const std::filesystem::path& dir,
                            const std::string& prefix) {
    std::vector<int64_t> s, e;
    const auto sample = test::read_f32(dir / (prefix + "sample.npy"), &s);
    const auto t = test::read_f32(dir / (prefix + "timesteps.npy"));
    const auto ctx = test::read_f32(dir / (prefix + "encoder_hidden_states.npy"), &e);
    const int n = static_cast<int>(s[0]), c = static_cast<int>(s[1]), h = static_cast<int>(s[2]),
              w = static_cast<int>(s[3]);
    const auto x = test::nchw_to_nhwc(sample, n, c, h, w);
    Cpu cpu;
    UNetRunner runner(unet, *cpu.backend, *cpu.context, h, w, static_cast<int>(e[1]));
    const size_t out_image = static_cast<size_t>(h) * w * unet.config().out_channels;
    const size_t in_image = static_cast<size_t>(h) * w * c;
    const size_t ctx_one = static_cast<size_t>(e[1] * e[2]);
    std::vector<float> out(out_image * static_cast<size_t>(n));
    for (int b = 0; b < n; ++b) {
        runner.predict(x.data() + in_image * b, 1, t[static_cast<size_t>(b)],
                       ctx.data() + ctx_one * b, out.data() + out_image * b, {});
    }
    return out;
}

void expect_close_relative(const std::vector<float>& got,
                           const std::vector<float>& want,
                           float tolerance) {
    ASSERT_EQ(got.size(), want.size());
    const float scale = test::max_abs(want);
    const float err = test::max_abs_diff(got.data(), want.data(), got.size());
    testing::Test::RecordProperty("max_rel_error", std::to_string(err / scale));
    std::printf("max error %.3g of max |ref| %.3g: relative %.3g\n", err, scale, err / scale);
    EXPECT_LE(err, tolerance * scale);
}

TEST(UNetParity, TrainedModelMatchesPyTorch) {
    auto model = load_diffusion_model(diffusion_data() / "fashion-unet");
    std::vector<int64_t> shape;
    const auto want_nchw = test::read_f32(diffusion_data() / "unet_out.npy", &shape);
    const auto want = test::nchw_to_nhwc(want_nchw, 2, 1, 32, 32);
    expect_close_relative(run_unet(*model->unet, diffusion_data(), "unet_in_"), want, 1e-4f);
}

class TinyUNet : public testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(TinyUNet, BothNamingsMatchPyTorch) {
    const auto& [name, file] = GetParam();
    const auto dir = diffusion_data() / name;
    weights::UNetConfig config = weights::parse_unet_config(
        test::read_json(dir / "config.json").dump(), (dir / "config.json").string());
    auto w = weights::to_diffusers_names(weights::load_safetensors(dir / file), config);
    const engine::UNet2DCondition unet(config, std::move(w));
    std::vector<int64_t> s;
    const auto want_nchw = test::read_f32(dir / "out.npy", &s);
    const auto want = test::nchw_to_nhwc(want_nchw, static_cast<int>(s[0]), static_cast<int>(s[1]),
                                         static_cast<int>(s[2]), static_cast<int>(s[3]));
    expect_close_relative(run_unet(unet, dir, "in_"), want, 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(Fixtures,
                         TinyUNet,
                         testing::Combine(testing::Values("tiny_sd", "tiny_fashion"),
                                          testing::Values("diffusers.safetensors",
                                                          "ldm.safetensors")));

// Linear layers with biases are stacked with their biases. A bias on the keys shifts every
// score of a query by the same q.b, which softmax ignores: the output must not change. (Had
// the key bias landed on the queries or values, it would.)
TEST(UNetParity, KeyBiasesReachTheKeys) {
    const auto dir = diffusion_data() / "tiny_fashion";
    const weights::UNetConfig config = weights::parse_unet_config(
        test::read_json(dir / "config.json").dump(), (dir / "config.json").string());
    const auto base = weights::load_safetensors(dir / "diffusers.safetensors");
    auto biased = base;
    int added = 0;
    for (const auto& [name, t] : base) {
        const std::string suffix = "to_k.weight";
        if (name.size() < suffix.size() ||
            name.compare(name.size() - suffix.size(), suffix.size(), suffix))
            continue;
        weights::WeightTensor b;
        b.shape = {t.shape[0]};
        for (int64_t i = 0; i < t.shape[0]; ++i)
            b.data.push_back(0.5f - 0.25f * static_cast<float>(i % 5));
        biased[name.substr(0, name.size() - 6) + "bias"] = b;
        ++added;
    }
    ASSERT_GT(added, 0);
    const engine::UNet2DCondition plain(config, base);
    const engine::UNet2DCondition with_bias(config, biased);
    const auto a = run_unet(plain, dir, "in_");
    const auto b = run_unet(with_bias, dir, "in_");
    EXPECT_LE(test::max_abs_diff(a.data(), b.data(), a.size()), 1e-5f * test::max_abs(a));
}

class Trajectory : public testing::TestWithParam<std::string> {};

TEST_P(Trajectory, MatchesPyTorchAtEveryStep) {
    const std::string kind = GetParam();
    const auto m = test::read_json(diffusion_data() / "manifest.json")[kind];
    auto model = load_diffusion_model(diffusion_data() / "fashion-unet");
    const auto classes = m["classes"].get<std::vector<int>>();
    const int steps = m["steps"].get<int>();
    const float guidance = m["guidance"].get<float>();
    std::vector<int64_t> shape;
    const auto want = test::read_f32(diffusion_data() / (kind + "_trajectory.npy"), &shape);
    const size_t image = 32 * 32;
    const size_t count = classes.size();

    const auto names = model->encoder->vocabulary();
    std::vector<float> cond;
    for (int k : classes) {
        const auto e = model->encoder->encode(names[static_cast<size_t>(k)]);
        cond.insert(cond.end(), e.begin(), e.end());
    }
    const Sampler sampler(kind == "ddim" ? SamplerKind::DDIM : SamplerKind::EULER, model->schedule,
                          steps);
    Latents x;
    x.count = static_cast<int>(count);
    x.h = x.w = 32;
    x.c = 1;
    x.data.assign(want.begin(), want.begin() + static_cast<std::ptrdiff_t>(image * count));
    Cpu cpu;
    UNetRunner runner(*model->unet, *cpu.backend, *cpu.context, 32, 32, 4);
    std::vector<float> errors;
    GenerateHooks hooks;
    hooks.on_latents = [&](int step, const std::vector<float>& latents) {
        const float* ref = want.data() + static_cast<size_t>(step) * image * count;
        errors.push_back(test::max_abs_diff(latents.data(), ref, latents.size()));
    };
    run_sampler(runner, sampler, x, cond, model->encoder->encode(""), guidance, 0, hooks);
    ASSERT_EQ(errors.size(), static_cast<size_t>(steps + 1));
    std::printf("%s max abs error per step:", kind.c_str());
    for (float e : errors)
        std::printf(" %.2g", e);
    std::printf("\n");
    for (size_t i = 0; i < errors.size(); ++i)
        EXPECT_LE(errors[i], 1e-3f) << "step " << i;
}

INSTANTIATE_TEST_SUITE_P(Samplers, Trajectory, testing::Values("ddim", "euler"));

}  // namespace
}  // namespace kiln::engine::diffusion
