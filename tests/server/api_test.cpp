// The v1 contract's happy paths: sessions, submit (JSON and multipart), poll, outputs,
// listing, delete, models and health.
#include <gtest/gtest.h>

#include "tests/server/server_harness.h"

namespace kiln::test {
namespace {

using nlohmann::json;

TEST(Api, SubmitPollAndFetchOutput) {
    Harness h;
    const std::string token = h.new_session();
    const image::Image input = test_image(20, 14, 1);
    auto res = h.submit(token, png_bytes(input), {{"priority", "high"}, {"params", {}}});
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    const json accepted = json::parse(res->body);
    const std::string id = accepted["id"];
    EXPECT_EQ(accepted["status"], "queued");
    EXPECT_TRUE(accepted["position"].is_number_integer());
    EXPECT_TRUE(accepted["created_at"].is_string());
    EXPECT_EQ(res->get_header_value("Location"), "/v1/jobs/" + id);

    const json job = h.wait_final(token, id);
    EXPECT_EQ(job["status"], "succeeded") << job.dump();
    EXPECT_EQ(job["model"], "srvgg_x4");
    EXPECT_EQ(job["task"], "upscale");  // openapi.yaml's Job is discriminated by it
    EXPECT_EQ(job["attempts"], 1);
    EXPECT_TRUE(job["error"].is_null());
    EXPECT_EQ(job["progress"]["done"], job["progress"]["total"]);
    EXPECT_TRUE(job["started_at"].is_string());
    EXPECT_TRUE(job["finished_at"].is_string());
    EXPECT_FALSE(job.contains("position"));
    ASSERT_EQ(job["outputs"].size(), 1u);
    EXPECT_EQ(job["outputs"][0]["width"], 80);
    EXPECT_EQ(job["outputs"][0]["height"], 56);
    EXPECT_EQ(job["outputs"][0]["content_type"], "image/png");

    auto out = h.client().Get(job["outputs"][0]["url"].get<std::string>(), h.auth(token));
    ASSERT_TRUE(out);
    ASSERT_EQ(out->status, 200);
    EXPECT_EQ(out->get_header_value("Content-Type"), "image/png");
    EXPECT_NE(out->get_header_value("Cache-Control").find("private"), std::string::npos);
    const std::string etag = out->get_header_value("ETag");
    EXPECT_FALSE(etag.empty());
    const auto decoded = image::decode_image(
        std::span(reinterpret_cast<const uint8_t*>(out->body.data()), out->body.size()));
    EXPECT_EQ(decoded.samples, expected_upscale(h.dir.path() / "models", input).samples);

    httplib::Headers conditional = h.auth(token);
    conditional.emplace("If-None-Match", etag);
    auto again = h.client().Get(job["outputs"][0]["url"].get<std::string>(), conditional);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304);
    expect_error(h.client().Get("/v1/jobs/" + id + "/outputs/1", h.auth(token)), 404, "not_found");
}

TEST(Api, MultipartSubmission) {
    Harness h;
    const std::string token = h.new_session();
    httplib::MultipartFormDataItems items = {
        {"request", json{{"model", "srvgg_x4"}, {"params", {{"tile", 0}}}}.dump(), "",
         "application/json"},
        {"image", png_bytes(test_image(9, 11, 2)), "in.png", "image/png"},
    };
    auto res = h.client().Post("/v1/jobs", h.auth(token), items);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    const json job = h.wait_final(token, json::parse(res->body)["id"]);
    EXPECT_EQ(job["status"], "succeeded");
    EXPECT_EQ(job["params"]["tile"], 0);
    EXPECT_EQ(job["outputs"][0]["width"], 36);
}

TEST(Api, SessionsNeedTokensAndCanBeDeleted) {
    Harness h;
    expect_error(h.client().Get("/v1/jobs"), 401, "unauthorized");
    expect_error(h.client().Get("/v1/jobs", h.auth(std::string(64, 'a'))), 401, "unauthorized");
    const std::string token = h.new_session();
    auto list = h.client().Get("/v1/jobs", h.auth(token));
    ASSERT_TRUE(list);
    EXPECT_EQ(list->status, 200);
    std::string forged = token;
    forged.back() = forged.back() == '0' ? '1' : '0';
    expect_error(h.client().Get("/v1/jobs", h.auth(forged)), 401, "unauthorized");

    auto res = h.submit(token, png_bytes(test_image(8, 8, 3)));
    ASSERT_EQ(res->status, 202);
    h.wait_final(token, json::parse(res->body)["id"]);
    auto del = h.client().Delete("/v1/sessions/current", h.auth(token));
    ASSERT_TRUE(del);
    EXPECT_EQ(del->status, 204);
    expect_error(h.client().Get("/v1/jobs", h.auth(token)), 401, "unauthorized");
}

TEST(Api, ApiKeyGuardsSessionCreation) {
    server::ServerOptions server;
    server.api_key = "secret-key";
    Harness h(Harness::default_scheduler(), server);
    expect_error(h.client().Post("/v1/sessions", "", "application/json"), 401, "unauthorized");
    expect_error(h.client().Post("/v1/sessions", h.auth("wrong"), "", "application/json"), 401,
                 "unauthorized");
    EXPECT_FALSE(h.new_session().empty());  // sends Bearer secret-key
}

TEST(Api, ListNewestFirstWithCursorStatusAndUpdatedSince) {
    Harness h;
    const std::string token = h.new_session();
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto res = h.submit(token, png_bytes(test_image(8, 8, 10 + i)));
        ASSERT_EQ(res->status, 202);
        ids.push_back(json::parse(res->body)["id"]);
    }
    for (const auto& id : ids)
        h.wait_final(token, id);
    auto page1 = h.client().Get("/v1/jobs?limit=2", h.auth(token));
    const json p1 = json::parse(page1->body);
    ASSERT_EQ(p1["jobs"].size(), 2u);
    EXPECT_EQ(p1["jobs"][0]["id"], ids[2]);
    ASSERT_TRUE(p1["next_cursor"].is_string());
    auto page2 = h.client().Get("/v1/jobs?limit=2&cursor=" + p1["next_cursor"].get<std::string>(),
                                h.auth(token));
    const json p2 = json::parse(page2->body);
    ASSERT_EQ(p2["jobs"].size(), 1u);
    EXPECT_EQ(p2["jobs"][0]["id"], ids[0]);
    EXPECT_TRUE(p2["next_cursor"].is_null());

    // The latest change of all (several workers or nodes finish jobs in any order).
    int64_t mark = p2["jobs"][0]["update_seq"];
    for (const auto& job : p1["jobs"])
        mark = std::max(mark, job["update_seq"].get<int64_t>());
    auto since = h.client().Get("/v1/jobs?updated_since=" + std::to_string(mark), h.auth(token));
    EXPECT_EQ(json::parse(since->body)["jobs"].size(), 0u);
    auto succeeded = h.client().Get("/v1/jobs?status=succeeded", h.auth(token));
    EXPECT_EQ(json::parse(succeeded->body)["jobs"].size(), 3u);
    expect_error(h.client().Get("/v1/jobs?status=bogus", h.auth(token)), 400, "bad_request");
    expect_error(h.client().Get("/v1/jobs?limit=0", h.auth(token)), 400, "bad_request");
}

TEST(Api, DeleteRemovesJobAndFiles) {
    Harness h;
    const std::string token = h.new_session();
    auto res = h.submit(token, png_bytes(test_image(8, 8, 4)));
    const std::string id = json::parse(res->body)["id"];
    h.wait_final(token, id);
    auto del = h.client().Delete("/v1/jobs/" + id, h.auth(token));
    ASSERT_TRUE(del);
    EXPECT_EQ(del->status, 204);
    expect_error(h.client().Get("/v1/jobs/" + id, h.auth(token)), 404, "not_found");
    expect_error(h.client().Get("/v1/jobs/" + id + "/outputs/0", h.auth(token)), 404, "not_found");
    expect_error(h.client().Delete("/v1/jobs/" + id, h.auth(token)), 404, "not_found");
}

TEST(Api, GalleryListsOutputsWithThumbnails) {
    Harness h;
    const std::string token = h.new_session(), other = h.new_session();
    auto res = h.submit(token, png_bytes(test_image(80, 70, 5)));
    const std::string id = json::parse(res->body)["id"];
    h.wait_final(token, id);
    auto gallery = h.client().Get("/v1/gallery?limit=5", h.auth(token));
    ASSERT_EQ(gallery->status, 200) << gallery->body;
    const json body = json::parse(gallery->body);
    ASSERT_EQ(body["items"].size(), 1u);
    const json item = body["items"][0];
    EXPECT_EQ(item["job_id"], id);
    EXPECT_EQ(item["index"], 0);
    EXPECT_EQ(item["width"], 320);
    EXPECT_EQ(item["height"], 280);
    EXPECT_EQ(item["model"], "srvgg_x4");
    EXPECT_TRUE(item["created_at"].is_string());
    EXPECT_TRUE(body["next_cursor"].is_null());
    auto thumb = h.client().Get(item["thumbnail_url"].get<std::string>(), h.auth(token));
    ASSERT_EQ(thumb->status, 200);
    EXPECT_FALSE(thumb->get_header_value("ETag").empty());
    const auto small = image::decode_image(
        std::span(reinterpret_cast<const uint8_t*>(thumb->body.data()), thumb->body.size()));
    EXPECT_EQ(small.width, 256);
    EXPECT_EQ(small.height, 224);

    auto foreign = h.client().Get("/v1/gallery", h.auth(other));
    EXPECT_EQ(json::parse(foreign->body)["items"].size(), 0u);
    EXPECT_EQ(h.client().Get(item["thumbnail_url"].get<std::string>(), h.auth(other))->status, 404);
}

TEST(Api, MetricsInPrometheusText) {
    Harness h;
    const std::string token = h.new_session();
    auto res = h.submit(token, png_bytes(test_image(8, 8, 6)));
    h.wait_final(token, json::parse(res->body)["id"]);
    h.submit(token, png_bytes(test_image(8, 8, 6)), {{"model", "missing"}});
    auto metrics = h.client().Get("/metrics");
    ASSERT_TRUE(metrics);
    ASSERT_EQ(metrics->status, 200);
    const std::string& text = metrics->body;
    for (const char* line :
         {"kiln_jobs{status=\"succeeded\"} 1", "kiln_queue_length 0",
          "kiln_run_seconds_count{model=\"srvgg_x4\"} 1",
          "kiln_queue_wait_seconds_count{model=\"srvgg_x4\"} 1",
          "kiln_admissions_refused_total{reason=\"model_not_found\"} 1",
          "kiln_model_cache_models 1",
          "kiln_http_requests_total{method=\"POST\",route=\"/v1/jobs\",status=\"202\"} 1",
          "kiln_http_requests_total{method=\"POST\",route=\"/v1/jobs\",status=\"404\"} 1"}) {
        EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
    }
}

TEST(Api, ModelsHealthAndReadiness) {
    Harness h;
    auto models = h.client().Get("/v1/models");
    ASSERT_TRUE(models);
    ASSERT_EQ(models->status, 200);
    const json list = json::parse(models->body);
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[1]["name"], "srvgg_x4");
    EXPECT_EQ(list[1]["task"], "upscale");
    EXPECT_EQ(list[1]["scale"], 4);
    EXPECT_GT(list[1]["parameters"], 0);
    EXPECT_TRUE(list[1]["loaded"].is_boolean());
    EXPECT_TRUE(list[1]["memory_bytes"].is_number());
    EXPECT_EQ(h.client().Get("/healthz")->status, 200);
    EXPECT_EQ(h.client().Get("/readyz")->status, 200);
    expect_error(h.client().Get("/v1/nothing"), 404, "not_found");
}

}  // namespace
}  // namespace kiln::test
