// Refusals: queue limits, oversized bodies and images, wrong types, corrupt images, unknown
// models, malformed JSON and path tricks, each with the JSON error body; the server serves on.
#include <gtest/gtest.h>

#include "tests/server/server_harness.h"

namespace kiln::test {
namespace {

using nlohmann::json;

TEST(Admission, QueueLimitsAnswer429WithRetryAfter) {
    auto options = Harness::default_scheduler();
    options.start_paused = true;
    options.max_queued_per_session = 2;
    options.max_queued = 3;
    Harness h(options);
    const std::string a = h.new_session(), b = h.new_session();
    const std::string png = png_bytes(test_image(8, 8, 1));
    EXPECT_EQ(h.submit(a, png)->status, 202);
    EXPECT_EQ(h.submit(a, png)->status, 202);
    auto full = h.submit(a, png);
    expect_error(full, 429, "session_queue_full");
    EXPECT_GE(std::stoi(full->get_header_value("Retry-After")), 1);
    EXPECT_EQ(h.submit(b, png)->status, 202);
    auto global = h.submit(b, png);
    expect_error(global, 429, "queue_full");
    EXPECT_FALSE(global->get_header_value("Retry-After").empty());

    h.resume_workers();  // the accepted jobs all run
    auto list = h.client().Get("/v1/jobs", h.auth(a));
    const json jobs = json::parse(list->body)["jobs"];
    ASSERT_EQ(jobs.size(), 2u);
    for (const auto& job : jobs)
        EXPECT_EQ(h.wait_final(a, job["id"])["status"], "succeeded");
}

TEST(Admission, ConcurrentSubmissionsNeverPassTheQueueLimits) {
    auto options = Harness::default_scheduler();
    options.start_paused = true;
    options.max_queued_per_session = 3;
    options.max_queued = 5;
    Harness h(options);
    const std::string a = h.new_session(), b = h.new_session();
    const std::string png = png_bytes(test_image(8, 8, 4));
    constexpr int clients = 8;
    std::vector<Answer> answers(2 * clients);
    run_concurrently(2 * clients, [&](int k) {
        answers[static_cast<size_t>(k)] = answer(h.submit(k < clients ? a : b, png));
    });
    int accepted_a = 0, accepted_b = 0;
    for (int k = 0; k < 2 * clients; ++k) {
        const Answer& res = answers[static_cast<size_t>(k)];
        if (res.status == 202) {
            (k < clients ? accepted_a : accepted_b) += 1;
            continue;
        }
        ASSERT_EQ(res.status, 429) << res.body;
        const std::string code = json::parse(res.body)["error"]["code"];
        EXPECT_TRUE(code == "session_queue_full" || code == "queue_full") << code;
    }
    // Each session up to its limit of 3, both together up to the queue's 5: 3 + 2.
    EXPECT_LE(accepted_a, 3);
    EXPECT_LE(accepted_b, 3);
    EXPECT_EQ(accepted_a + accepted_b, 5);
    const json queue_a = json::parse(h.client().Get("/v1/queue", h.auth(a))->body);
    const json queue_b = json::parse(h.client().Get("/v1/queue", h.auth(b))->body);
    EXPECT_EQ(queue_a["queued"], accepted_a);
    EXPECT_EQ(queue_b["queued"], accepted_b);
    // A refused submission leaves no job behind.
    EXPECT_EQ(json::parse(h.client().Get("/v1/jobs", h.auth(a))->body)["jobs"].size(),
              static_cast<size_t>(accepted_a));
    EXPECT_EQ(json::parse(h.client().Get("/v1/jobs", h.auth(b))->body)["jobs"].size(),
              static_cast<size_t>(accepted_b));
}

TEST(Admission, BadInputsGetTheirStatusAndTheServerServesOn) {
    auto options = Harness::default_scheduler();
    options.decode_limits.max_pixels = 64 * 64;
    server::ServerOptions server;
    server.max_body_bytes = 256 * 1024;
    Harness h(options, server);
    const std::string token = h.new_session();
    auto cli = h.client();
    const auto headers = h.auth(token);
    const std::string png = png_bytes(test_image(16, 16, 2));

    // 413: body over the limit, image over the pixel limit.
    expect_error(cli.Post("/v1/jobs", headers, std::string(300 * 1024, 'x'), "application/json"),
                 413, "payload_too_large");
    auto big = h.submit(token, png_bytes(test_image(80, 80, 3)));
    expect_error(big, 413, "payload_too_large");
    EXPECT_NE(json::parse(big->body)["error"]["message"].get<std::string>().find("4096"),
              std::string::npos);
    // 415: wrong content type, not an image.
    expect_error(cli.Post("/v1/jobs", headers, "model=x", "text/plain"), 415,
                 "unsupported_media_type");
    expect_error(h.submit(token, "GIF89a not a png at all"), 415, "unsupported_media_type");
    // 422: truncated and corrupt PNGs, bad params.
    expect_error(h.submit(token, png.substr(0, png.size() / 2)), 422, "invalid_params");
    std::string corrupt = png;
    for (size_t i = 60; i < corrupt.size() - 20; ++i)
        corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
    expect_error(h.submit(token, corrupt), 422, "invalid_params");
    expect_error(h.submit(token, png, {{"params", {{"tile", -3}}}}), 422, "invalid_params");
    expect_error(h.submit(token, png, {{"params", {{"steps", 3}}}}), 422, "invalid_params");
    expect_error(h.submit(token, png, {{"priority", "urgent"}}), 422, "invalid_params");
    // 404: unknown model; 400: malformed JSON and shapes.
    expect_error(h.submit(token, png, {{"model", "no-such-model"}}), 404, "model_not_found");
    expect_error(cli.Post("/v1/jobs", headers, "{\"model\":", "application/json"), 400,
                 "bad_request");
    expect_error(cli.Post("/v1/jobs", headers, "[1,2]", "application/json"), 400, "bad_request");
    expect_error(cli.Post("/v1/jobs", headers, R"({"model":"srvgg_x4"})", "application/json"), 400,
                 "bad_request");
    expect_error(cli.Post("/v1/jobs", headers, R"({"model":"srvgg_x4","input":{"image":"%%%"}})",
                          "application/json"),
                 400, "bad_request");
    // 404: path tricks in ids.
    for (const char* path :
         {"/v1/jobs/..%2F..%2Fetc%2Fpasswd", "/v1/jobs/ABCDEF", "/v1/jobs/../../etc/passwd",
          "/v1/jobs/0123456789abcdef0123456789ABCDEF", "/v1/jobs/%2e%2e/outputs/0",
          "/v1/jobs/00000000000000000000000000000000/outputs/..%2F..%2Fkiln.db", "/v1/jobs/%FF%FE",
          "/v1/jobs/%00"}) {
        auto res = cli.Get(path, headers);
        ASSERT_TRUE(res) << path;
        EXPECT_EQ(res->status, 404) << path;
        EXPECT_TRUE(json::parse(res->body, nullptr, false).contains("error")) << path;
    }
    // And the server still serves a good job.
    auto ok = h.submit(token, png);
    ASSERT_EQ(ok->status, 202) << ok->body;
    EXPECT_EQ(h.wait_final(token, json::parse(ok->body)["id"])["status"], "succeeded");
}

TEST(Admission, ImageThatFitsNoTileIsRefusedAtSubmit) {
    auto options = Harness::default_scheduler();
    options.memory_budget = 4096;  // smaller than any plan
    Harness h(options);
    const std::string token = h.new_session();
    auto res = h.submit(token, png_bytes(test_image(16, 16, 5)));
    expect_error(res, 413, "payload_too_large");
    EXPECT_NE(json::parse(res->body)["error"]["message"].get<std::string>().find("budget"),
              std::string::npos);
    auto list = h.client().Get("/v1/jobs", h.auth(token));
    EXPECT_EQ(json::parse(list->body)["jobs"].size(), 0u);
}

}  // namespace
}  // namespace kiln::test
