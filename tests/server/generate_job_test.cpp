// Generation jobs through the API: the model listed with task "generate", a job with a prompt
// and params making `count` images that equal kiln's own generate(), progress per step,
// cancel mid-way keeping no output, a retry making the same images (the seed is stored), and
// refusals for bad prompts, params and inputs.
#include <gtest/gtest.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/diffusion/generation.h"
#include "engine/diffusion/image_grid.h"
#include "tests/server/server_harness.h"

namespace kiln::test {
namespace {

using nlohmann::json;

const std::filesystem::path kModel =
    std::filesystem::path(KILN_TEST_DATA) / "diffusion" / "fashion-unet";

class GenerateJobs : public testing::Test {
  protected:
    void SetUp() override {
        std::filesystem::create_directory_symlink(kModel, h.dir.path() / "models" / "fashion-unet");
        token = h.new_session();
    }
    httplib::Result post(const json& body) {
        return h.client().Post("/v1/jobs", h.auth(token), body.dump(), "application/json");
    }
    std::string submit(const json& body) {
        auto res = post(body);
        EXPECT_TRUE(res);
        EXPECT_EQ(res->status, 202) << res->body;
        return json::parse(res->body)["id"];
    }

    Harness h;
    std::string token;
};

TEST_F(GenerateJobs, ListedWithTaskAndPrompts) {
    const json models = json::parse(h.client().Get("/v1/models")->body);
    bool found = false;
    for (const json& m : models) {
        if (m["name"] != "fashion-unet") {
            EXPECT_EQ(m["task"], "upscale");
            continue;
        }
        found = true;
        EXPECT_EQ(m["task"], "generate");
        EXPECT_EQ(m["prompts"].size(), 10u);
        EXPECT_EQ(m["width"], 32);
    }
    EXPECT_TRUE(found);
}

TEST_F(GenerateJobs, MakesTheSameImagesAsTheEngine) {
    const std::string id = submit({{"model", "fashion-unet"},
                                   {"input", {{"prompt", "Trouser"}}},
                                   {"params", {{"steps", 4}, {"count", 2}, {"seed", 5}}}});
    const json done = h.wait_final(token, id);
    ASSERT_EQ(done["status"], "succeeded") << done.dump();
    ASSERT_EQ(done["outputs"].size(), 2u);
    EXPECT_EQ(done["progress"]["done"], 4);
    EXPECT_EQ(done["progress"]["total"], 4);
    EXPECT_EQ(done["params"]["seed"], 5);
    EXPECT_EQ(done["task"], "generate");

    const auto model = engine::diffusion::load_diffusion_model(kModel);
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context(engine::ContextOptions{1});
    engine::diffusion::GenerateParams p;
    p.steps = 4;
    p.count = 2;
    p.seed = 5;
    const engine::diffusion::Latents want =
        engine::diffusion::generate(*model, *backend, *context, "trouser", p, {});
    for (int k = 0; k < 2; ++k) {
        auto res =
            h.client().Get("/v1/jobs/" + id + "/outputs/" + std::to_string(k), h.auth(token));
        ASSERT_EQ(res->status, 200);
        EXPECT_EQ(res->get_header_value("Content-Type"), "image/png");
        const image::Image got = image::decode_image(
            std::span(reinterpret_cast<const uint8_t*>(res->body.data()), res->body.size()));
        EXPECT_EQ(got.samples, engine::diffusion::latents_to_image(want, k).samples)
            << "image " << k;
    }
    // Both images are in this session's gallery, and only there.
    const json gallery = json::parse(h.client().Get("/v1/gallery", h.auth(token))->body);
    EXPECT_EQ(gallery["items"].size(), 2u);
    const std::string other = h.new_session();
    EXPECT_EQ(json::parse(h.client().Get("/v1/gallery", h.auth(other))->body)["items"].size(), 0u);
    EXPECT_EQ(h.client().Get("/v1/jobs/" + id + "/outputs/0", h.auth(other))->status, 404);
    // The stored input is the prompt.
    auto input = h.client().Get("/v1/jobs/" + id + "/input", h.auth(token));
    EXPECT_EQ(json::parse(input->body)["prompt"], "Trouser");
}

TEST_F(GenerateJobs, CancelMidwayKeepsNoOutputAndRetryReproduces) {
    h.log->hold_next_progress();
    const std::string id = submit({{"model", "fashion-unet"},
                                   {"input", {{"prompt", "bag"}}},
                                   {"params", {{"steps", 6}, {"sampler", "euler_karras"}}}});
    EXPECT_EQ(h.log->wait_held(), id);
    const json running = h.get_job(token, id);
    EXPECT_EQ(running["status"], "running");
    EXPECT_EQ(running["progress"]["done"], 1);
    EXPECT_EQ(running["progress"]["total"], 6);
    const uint64_t seed = running["params"]["seed"];  // chosen by the server, stored
    auto cancel = h.client().Post("/v1/jobs/" + id + "/cancel", h.auth(token), "", "");
    EXPECT_EQ(cancel->status, 202) << cancel->body;
    h.log->release();
    const json cancelled = h.wait_final(token, id);
    EXPECT_EQ(cancelled["status"], "cancelled");
    EXPECT_EQ(cancelled["outputs"].size(), 0u);
    EXPECT_LT(cancelled["progress"]["done"].get<int>(), 6);
    EXPECT_EQ(h.client().Get("/v1/jobs/" + id + "/outputs/0", h.auth(token))->status, 404);

    auto retry = h.client().Post("/v1/jobs/" + id + "/retry", h.auth(token), "", "");
    ASSERT_EQ(retry->status, 202) << retry->body;
    const std::string again = json::parse(retry->body)["id"];
    const json done = h.wait_final(token, again);
    ASSERT_EQ(done["status"], "succeeded");
    EXPECT_EQ(done["params"]["seed"].get<uint64_t>(), seed);
    const std::string fresh =
        submit({{"model", "fashion-unet"},
                {"input", {{"prompt", "bag"}}},
                {"params", {{"steps", 6}, {"sampler", "euler_karras"}, {"seed", seed}}}});
    ASSERT_EQ(h.wait_final(token, fresh)["status"], "succeeded");
    EXPECT_EQ(h.client().Get("/v1/jobs/" + again + "/outputs/0", h.auth(token))->body,
              h.client().Get("/v1/jobs/" + fresh + "/outputs/0", h.auth(token))->body);
}

TEST_F(GenerateJobs, RefusalsNameTheProblem) {
    struct Case {
        json body;
        int status;
        std::string code, mentions;
    };
    const std::string png = base64(png_bytes(test_image(8, 8, 1)));
    const std::vector<Case> cases = {
        {{{"model", "fashion-unet"}, {"input", {{"prompt", "a cat"}}}},
         422,
         "invalid_params",
         "ankle boot"},
        {{{"model", "fashion-unet"}, {"input", {{"prompt", "bag"}}}, {"params", {{"steps", 0}}}},
         422,
         "invalid_params",
         "steps"},
        {{{"model", "fashion-unet"}, {"input", {{"prompt", "bag"}}}, {"params", {{"count", 99}}}},
         422,
         "invalid_params",
         "count"},
        {{{"model", "fashion-unet"}, {"input", {{"prompt", "bag"}}}, {"params", {{"tile", 4}}}},
         422,
         "invalid_params",
         "tile"},
        {{{"model", "fashion-unet"},
          {"input", {{"prompt", "bag"}}},
          {"params", {{"sampler", "heun"}}}},
         422,
         "invalid_params",
         "heun"},
        {{{"model", "fashion-unet"}, {"input", {{"image", png}}}},
         422,
         "invalid_params",
         "input.prompt"},
        {{{"model", "srvgg_x4"}, {"input", {{"prompt", "bag"}}}},
         400,
         "bad_request",
         "input.image"},
        {{{"model", "nope"}, {"input", {{"prompt", "bag"}}}}, 404, "model_not_found", "nope"},
        {{{"model", "fashion-unet"}, {"task", "upscale"}, {"input", {{"prompt", "bag"}}}},
         422,
         "invalid_params",
         "generate"},
    };
    for (const Case& c : cases) {
        auto res = post(c.body);
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, c.status) << c.body.dump() << " -> " << res->body;
        const json err = json::parse(res->body)["error"];
        EXPECT_EQ(err["code"], c.code) << res->body;
        EXPECT_NE(err["message"].get<std::string>().find(c.mentions), std::string::npos)
            << res->body;
    }
    // Nothing was queued, and the server still serves.
    EXPECT_EQ(json::parse(h.client().Get("/v1/jobs", h.auth(token))->body)["jobs"].size(), 0u);
    EXPECT_EQ(h.client().Get("/healthz")->status, 200);
}

}  // namespace
}  // namespace kiln::test
