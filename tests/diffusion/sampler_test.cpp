// Noise schedule and sampler schedules against the values diffusers' schedulers give
// (recorded in tests/data/diffusion/manifest.json by tools/train_diffusion.py golden).
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "engine/diffusion/sampler.h"
#include "tests/diffusion/test_data.h"

namespace kiln::engine::diffusion {
namespace {

using test::diffusion_data;
using test::read_json;

ScheduleConfig fashion_schedule() {
    std::ifstream in(diffusion_data() / "fashion-unet" / "scheduler_config.json");
    std::stringstream text;
    text << in.rdbuf();
    return parse_schedule_config(text.str(), "scheduler_config.json");
}

TEST(Sampler, AlphasCumprodMatchPyTorch) {
    const auto want = test::read_f32(diffusion_data() / "alphas_cumprod.npy");
    const auto got = alphas_cumprod(fashion_schedule());
    ASSERT_EQ(got.size(), want.size());
    for (size_t t = 0; t < want.size(); ++t)
        EXPECT_EQ(got[t], want[t]) << "t = " << t;
}

TEST(Sampler, DdimLeadingTimesteps) {
    const auto m = read_json(diffusion_data() / "manifest.json");
    const Sampler s(SamplerKind::DDIM, fashion_schedule(), 20);
    const auto want = m["ddim"]["timesteps"].get<std::vector<float>>();
    EXPECT_EQ(s.timesteps(), want);
    EXPECT_EQ(s.init_noise_sigma(), 1.0f);
    EXPECT_EQ(s.input_divisor(3), 1.0f);
}

TEST(Sampler, EulerSigmasAndNoiseScale) {
    const auto m = read_json(diffusion_data() / "manifest.json");
    const Sampler s(SamplerKind::EULER, fashion_schedule(), 20);
    EXPECT_EQ(s.timesteps(), m["euler"]["timesteps"].get<std::vector<float>>());
    const auto want = m["euler"]["sigmas"].get<std::vector<float>>();
    ASSERT_EQ(s.sigmas().size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
        EXPECT_NEAR(s.sigmas()[i], want[i], 2e-7f * want[i]) << i;
    EXPECT_NEAR(s.init_noise_sigma(), m["euler"]["initial_noise_scale"].get<float>(), 1e-4f);
    EXPECT_NEAR(s.input_divisor(0), std::sqrt(want[0] * want[0] + 1.0f), 1e-4f);
}

TEST(Sampler, KarrasSigmasSpanTheScheduleAndDecrease) {
    const ScheduleConfig c = fashion_schedule();
    const Sampler plain(SamplerKind::EULER, c, 25);
    const Sampler karras(SamplerKind::EULER_KARRAS, c, 25);
    ASSERT_EQ(karras.sigmas().size(), 26u);
    EXPECT_NEAR(karras.sigmas().front(), plain.sigmas().front(), 1e-3f);
    EXPECT_NEAR(karras.sigmas()[24], plain.sigmas()[24], 1e-5f);
    EXPECT_EQ(karras.sigmas().back(), 0.0f);
    for (size_t i = 1; i < karras.sigmas().size(); ++i)
        EXPECT_LT(karras.sigmas()[i], karras.sigmas()[i - 1]);
    // Eq. 5 of Karras et al. at the middle of the ramp (rho = 7).
    const double lo = std::pow(plain.sigmas()[24], 1.0 / 7),
                 hi = std::pow(plain.sigmas()[0], 1.0 / 7);
    EXPECT_NEAR(karras.sigmas()[12], std::pow(hi + 0.5 * (lo - hi), 7.0), 1e-4);
    // Fractional timesteps map back to the sigmas: the first is the plain schedule's first.
    EXPECT_NEAR(karras.timesteps().front(), plain.timesteps().front(), 0.05f);
    for (size_t i = 1; i < karras.timesteps().size(); ++i)
        EXPECT_LT(karras.timesteps()[i], karras.timesteps()[i - 1]);
}

TEST(Sampler, DdimStepRecoversTheCleanSampleFromTheTrueNoise) {
    // With eps equal to the noise actually mixed in, DDIM's x0 is exact, so the step lands
    // on the forward process at the previous timestep.
    const ScheduleConfig c = fashion_schedule();
    const auto ac = alphas_cumprod(c);
    const Sampler s(SamplerKind::DDIM, c, 10);
    const int t = static_cast<int>(s.timesteps()[2]);
    const int prev = static_cast<int>(s.timesteps()[3]);
    const float x0 = 0.3f, e = -1.2f;
    float x = std::sqrt(ac[t]) * x0 + std::sqrt(1 - ac[t]) * e;
    s.step(2, &e, &x, 1, nullptr);
    EXPECT_NEAR(x, std::sqrt(ac[prev]) * x0 + std::sqrt(1 - ac[prev]) * e, 1e-5f);
}

TEST(Sampler, DdpmAddsNoiseExceptWhenTheVarianceVanishes) {
    const ScheduleConfig c = fashion_schedule();
    const Sampler s(SamplerKind::DDPM, c, 10);
    EXPECT_TRUE(s.needs_noise(0));
    float a = 0.5f, b = 0.5f;
    const float eps = 0.1f, n1 = 1.0f, n2 = -1.0f;
    s.step(0, &eps, &a, 1, &n1);
    s.step(0, &eps, &b, 1, &n2);
    EXPECT_GT(a - b, 0.1f);  // the noise term is there
    // The last step goes to t < 0, where alpha_prev = 1 and the variance is 0.
    float c1 = 0.5f, c2 = 0.5f;
    s.step(9, &eps, &c1, 1, &n1);
    s.step(9, &eps, &c2, 1, &n2);
    EXPECT_EQ(c1, c2);
}

TEST(Sampler, GuidanceCombinesUncondAndCond) {
    float u[2] = {1.0f, -2.0f};
    const float c[2] = {3.0f, 0.0f};
    apply_guidance(u, c, 2, 3.0f);
    EXPECT_FLOAT_EQ(u[0], 7.0f);
    EXPECT_FLOAT_EQ(u[1], 4.0f);
}

TEST(Sampler, RefusesWhatItDoesNotImplement) {
    EXPECT_THROW(parse_sampler("heun"), core::Error);
    EXPECT_THROW(Sampler(SamplerKind::DDIM, ScheduleConfig{}, 0), core::Error);
    try {
        parse_schedule_config(R"({"prediction_type": "v_prediction"})", "s.json");
        FAIL() << "v_prediction accepted";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::UNSUPPORTED);
        EXPECT_NE(std::string(e.what()).find("prediction_type"), std::string::npos);
    }
    EXPECT_THROW(parse_schedule_config(R"({"beta_schedule": "squaredcos_cap_v2"})", "s.json"),
                 core::Error);
    EXPECT_THROW(parse_schedule_config("{", "s.json"), core::Error);
}

TEST(Sampler, ScaledLinearIsTheSquareOfALinspaceOfRoots) {
    ScheduleConfig c;  // SD defaults: scaled_linear 0.00085 .. 0.012
    const auto ac = alphas_cumprod(c);
    ASSERT_EQ(ac.size(), 1000u);
    EXPECT_NEAR(ac[0], 1.0f - 0.00085f, 1e-7f);
    const float beta_last = 1.0f - ac[999] / ac[998];
    EXPECT_NEAR(beta_last, 0.012f, 2e-5f);
}

}  // namespace
}  // namespace kiln::engine::diffusion
