// generate(): seeded and reproducible, independent of how many images share a batch,
// progress per step, cancellation between steps, parameter validation.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/diffusion/generation.h"
#include "engine/diffusion/philox_noise.h"
#include "tests/diffusion/test_data.h"

namespace kiln::engine::diffusion {
namespace {

class Generation : public testing::Test {
  protected:
    static void SetUpTestSuite() {
        model_ = load_diffusion_model(test::diffusion_data() / "fashion-unet").release();
    }
    static void TearDownTestSuite() { delete model_; }

    Latents run(const std::string& prompt, GenerateParams p, const GenerateHooks& hooks = {}) {
        return generate(*model_, *backend_, *context_, prompt, p, hooks);
    }

    static DiffusionModel* model_;
    std::unique_ptr<engine::Backend> backend_ = engine::cpu::make_cpu_backend({});
    std::unique_ptr<engine::ExecutionContext> context_ = backend_->create_context({1});
};

DiffusionModel* Generation::model_ = nullptr;

TEST_F(Generation, SameSeedSameImagesWhateverTheBatch) {
    for (SamplerKind kind : {SamplerKind::DDIM, SamplerKind::DDPM, SamplerKind::EULER_KARRAS}) {
        GenerateParams p;
        p.sampler = kind;
        p.steps = 3;
        p.seed = 11;
        p.count = 2;
        const Latents two = run("trouser", p);
        ASSERT_EQ(two.data.size(), 2u * 32 * 32);
        p.count = 1;
        const Latents one = run("trouser", p);
        // Image 0 of a batch of two is image 0 alone: noise is drawn per (seed, image).
        EXPECT_EQ(std::vector<float>(two.data.begin(), two.data.begin() + 1024), one.data)
            << sampler_name(kind);
        p.seed = 12;
        EXPECT_NE(run("trouser", p).data, one.data) << sampler_name(kind);
    }
}

TEST_F(Generation, ReportsEveryStepAndStopsWhenCancelled) {
    GenerateParams p;
    p.steps = 6;
    std::vector<int> seen;
    std::atomic<bool> cancel{false};
    GenerateHooks hooks;
    hooks.cancel = &cancel;
    hooks.on_step = [&](int done, int total) {
        EXPECT_EQ(total, 6);
        seen.push_back(done);
        if (done == 2)
            cancel = true;
    };
    try {
        run("bag", p, hooks);
        FAIL() << "not cancelled";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::CANCELLED);
    }
    EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

TEST_F(Generation, RefusesBadParametersAndPrompts) {
    GenerateParams p;
    p.steps = 0;
    EXPECT_THROW(run("bag", p), core::Error);
    p = {};
    p.count = 1000;
    EXPECT_THROW(run("bag", p), core::Error);
    p = {};
    p.height = 30;  // not a multiple of 4
    EXPECT_THROW(run("bag", p), core::Error);
    p = {};
    try {
        run("a photo of a cat", p);
        FAIL() << "unknown prompt accepted";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("ankle boot"), std::string::npos) << e.what();
    }
}

TEST_F(Generation, TracesEveryStepWithItsForwardAndOps) {
    GenerateParams p;
    p.steps = 2;
    engine::Trace trace;
    GenerateHooks hooks;
    hooks.trace = &trace;
    run("coat", p, hooks);
    int steps = 0, forwards = 0, ops = 0;
    for (const engine::TraceEvent& e : trace.events()) {
        steps += e.category == "step";
        forwards += e.category == "forward";
        ops += e.category == "op";
        EXPECT_GE(e.dur_us, 0.0);
    }
    EXPECT_EQ(steps, 2);
    EXPECT_EQ(forwards, 2);
    // Guidance runs [uncond; cond]: two samples per step, every op of the graph each.
    const auto graph = model_->unet->build_graph(32, 32, model_->encoder->tokens());
    EXPECT_EQ(ops, 2 * 2 * static_cast<int>(graph.ops().size()));
}

TEST_F(Generation, SamplesInParallelLanesEqualOneThread) {
    auto two = backend_->create_context({2});
    if (two->threads() < 2)
        GTEST_SKIP() << "OpenMP gives one thread here (OMP_THREAD_LIMIT): no lanes to compare";
    UNetRunner lanes(*model_->unet, *backend_, *two, 32, 32, 4);
    UNetRunner single(*model_->unet, *backend_, *context_, 32, 32, 4);
    ASSERT_EQ(lanes.lanes(), 2);
    EXPECT_EQ(single.lanes(), 0);
    const int batch = 3;
    std::vector<float> x(32 * 32 * batch), ctx;
    for (size_t j = 0; j < x.size(); ++j)
        x[j] = philox_normal(3, 0, 0, j);
    for (const char* prompt : {"bag", "", "coat"}) {
        const auto e = model_->encoder->encode(prompt);
        ctx.insert(ctx.end(), e.begin(), e.end());
    }
    std::vector<float> a(x.size()), b(x.size());
    lanes.predict(x.data(), batch, 321.0f, ctx.data(), a.data(), {});
    single.predict(x.data(), batch, 321.0f, ctx.data(), b.data(), {});
    EXPECT_EQ(a, b);
    // A cancel requested before the run stops every lane.
    std::atomic<bool> cancel{true};
    engine::RunControl control;
    control.cancel = &cancel;
    EXPECT_THROW(lanes.predict(x.data(), batch, 321.0f, ctx.data(), a.data(), control),
                 core::Error);
}

TEST(Postprocess, RoundsLikeDiffusers) {
    const float v[5] = {-1.5f, -1.0f, 0.0f, 1.0f, 2.0f};
    EXPECT_EQ(to_uint8(v, 5), (std::vector<uint8_t>{0, 0, 128, 255, 255}));
}

}  // namespace
}  // namespace kiln::engine::diffusion
