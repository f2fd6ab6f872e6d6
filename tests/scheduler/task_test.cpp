// The task interface as the scheduler uses it: one model cache for every kind, admission by
// the model's task, refusals in the scheduler's own terms, descriptions and stored inputs.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/cpu/cpu_backend.h"
#include "scheduler/ids.h"
#include "scheduler/local_result_store.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_error.h"
#include "scheduler/sqlite_job_store.h"
#include "scheduler/upscale_task.h"
#include "tests/scheduler/temp_dir.h"
#include "tests/scheduler/test_inputs.h"

namespace kiln::scheduler {
namespace {

class TaskTest : public ::testing::Test {
  protected:
    TaskTest() {
        test::add_srvgg_models(dir_.path() / "models", {"srvgg_x4.pth"});
        std::filesystem::create_directory_symlink(
            std::filesystem::path(KILN_TEST_DATA) / "diffusion" / "fashion-unet",
            dir_.path() / "models" / "fashion-unet");
        options_.start_paused = true;  // admission only: no job runs
        scheduler_ = std::make_unique<Scheduler>(jobs_, results_, registry_, *backend_, options_);
        scheduler_->start();
    }

    SubmitRequest request(const std::string& model) const {
        SubmitRequest r;
        r.session_id = session_;
        r.model = model;
        return r;
    }

    // The refusal `submit` throws, or fails the test.
    SchedulerError refusal(SubmitRequest r) {
        try {
            scheduler_->submit(std::move(r));
        } catch (const SchedulerError& e) {
            return e;
        }
        ADD_FAILURE() << "no SchedulerError";
        return SchedulerError(SchedulerCode::NOT_FOUND, "");
    }

    test::TempDir dir_;
    SqliteJobStore jobs_{dir_.path() / "kiln.db"};
    LocalResultStore results_{dir_.path() / "results"};
    weights::ModelRegistry registry_{dir_.path() / "models"};
    std::unique_ptr<engine::Backend> backend_ = engine::cpu::make_cpu_backend();
    SchedulerOptions options_;
    std::unique_ptr<Scheduler> scheduler_;
    std::string session_ = random_id();
};

TEST_F(TaskTest, OneCacheHoldsEveryKind) {
    ModelCache cache(registry_, size_t{1} << 30);
    const auto upscaler = cache.acquire("srvgg_x4");
    const auto generator = cache.acquire("fashion-unet");
    EXPECT_EQ(upscaler->kind(), TaskKind::UPSCALE);
    EXPECT_EQ(generator->kind(), TaskKind::GENERATE);
    EXPECT_GT(generator->memory_bytes(), 0u);
    EXPECT_EQ(cache.loaded().size(), 2u);
    auto context = backend_->create_context(engine::ContextOptions{1});
    EXPECT_NE(cache.plans("srvgg_x4", upscaler, *backend_, *context), nullptr);
    EXPECT_EQ(cache.plans("fashion-unet", generator, *backend_, *context), nullptr);
    EXPECT_EQ(cache.plan_misses(), 1u);                   // generation keeps no plans: not counted
    EXPECT_EQ(cache.acquire("fashion-unet"), generator);  // cached, not loaded again
}

TEST_F(TaskTest, AdmissionFollowsTheModelsTask) {
    SubmitRequest up = request("srvgg_x4");
    up.input.image = test::test_png(12, 10, 1);
    up.params_json = R"({"tile":32})";
    const Job upscale = scheduler_->submit(std::move(up)).job;
    EXPECT_EQ(upscale.tile, 32);
    EXPECT_EQ(upscale.input_width, 12);

    SubmitRequest gen = request("fashion-unet");
    gen.input.prompt = "bag";
    gen.params_json = R"({"steps":2})";
    const Job generate = scheduler_->submit(std::move(gen)).job;
    EXPECT_NE(generate.params_json.find("\"seed\""), std::string::npos) << generate.params_json;
    EXPECT_EQ(generate.input_width, 32);  // the model's sample size

    const auto image = scheduler_->input(session_, upscale.id);
    ASSERT_TRUE(image);
    EXPECT_EQ(image->content_type, "image/png");
    const auto prompt = scheduler_->input(session_, generate.id);
    ASSERT_TRUE(prompt);
    EXPECT_EQ(prompt->content_type, "application/json");
    EXPECT_EQ(std::string(prompt->bytes.begin(), prompt->bytes.end()), R"({"prompt":"bag"})");
    EXPECT_THROW(scheduler_->input(random_id(), upscale.id), SchedulerError);
}

TEST_F(TaskTest, RefusalsSayWhatTheTaskExpected) {
    SubmitRequest no_image = request("srvgg_x4");
    no_image.input.prompt = "bag";
    SchedulerError e = refusal(std::move(no_image));
    EXPECT_EQ(e.code(), SchedulerCode::MISSING_INPUT);
    EXPECT_EQ(e.expected_input(), InputPart::IMAGE);

    SubmitRequest image_to_generator = request("fashion-unet");
    image_to_generator.input.image = test::test_png(12, 10, 1);
    image_to_generator.input.prompt = "bag";
    e = refusal(std::move(image_to_generator));
    EXPECT_EQ(e.code(), SchedulerCode::INVALID_PARAMS);
    EXPECT_EQ(e.expected_input(), InputPart::PROMPT);

    SubmitRequest wrong_task = request("srvgg_x4");
    wrong_task.task = TaskKind::GENERATE;
    wrong_task.input.image = test::test_png(12, 10, 1);
    e = refusal(std::move(wrong_task));
    EXPECT_EQ(e.code(), SchedulerCode::INVALID_PARAMS);
    EXPECT_NE(std::string(e.what()).find("runs upscale jobs"), std::string::npos) << e.what();

    SubmitRequest unknown_param = request("srvgg_x4");
    unknown_param.input.image = test::test_png(12, 10, 1);
    unknown_param.params_json = R"({"steps":3})";
    e = refusal(std::move(unknown_param));
    EXPECT_EQ(e.code(), SchedulerCode::INVALID_PARAMS);
    EXPECT_NE(std::string(e.what()).find("steps"), std::string::npos) << e.what();

    e = refusal(request("nope"));
    EXPECT_EQ(e.code(), SchedulerCode::MODEL_NOT_FOUND);
    EXPECT_EQ(std::string(e.what()).find("/v1/"), std::string::npos) << "names no route";
    EXPECT_EQ(scheduler_->queue_info(session_).queued, 0u);
}

TEST_F(TaskTest, UpscaleParamsAreTileOnly) {
    EXPECT_EQ(parse_upscale_params("{}"), -1);
    EXPECT_EQ(parse_upscale_params(R"({"tile":0})"), 0);
    EXPECT_EQ(parse_upscale_params(R"({"tile":8192})"), 8192);
    for (const char* bad : {R"({"tile":-1})", R"({"tile":8193})", R"({"tile":1.5})",
                            R"({"tile":"64"})", R"({"scale":2})", "[]", "not json"}) {
        EXPECT_THROW(parse_upscale_params(bad), SchedulerError) << bad;
    }
}

TEST_F(TaskTest, DescriptionsComeFromTheTask) {
    const auto models = scheduler_->describe_models();
    ASSERT_EQ(models.size(), 2u);
    EXPECT_EQ(models[0].name, "fashion-unet");
    EXPECT_EQ(models[0].task, TaskKind::GENERATE);
    EXPECT_EQ(models[0].width, 32);
    EXPECT_FALSE(models[0].prompts.empty());
    EXPECT_EQ(models[1].name, "srvgg_x4");
    EXPECT_EQ(models[1].task, TaskKind::UPSCALE);
    EXPECT_EQ(models[1].scale, 4);
    EXPECT_TRUE(models[1].prompts.empty());
}

}  // namespace
}  // namespace kiln::scheduler
