// The per-client limits GET /v1/limits lists, each enforced with its own error, the server
// serving on after each: JSON nesting, prompt length, event streams per session, sessions
// per client address, stored bytes per session, header line and request-target sizes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "server/client_limits.h"
#include "tests/server/event_stream_client.h"
#include "tests/server/server_harness.h"

namespace kiln::test {
namespace {

using nlohmann::json;

TEST(Limits, ListsEveryLimitAsConfigured) {
    auto options = Harness::default_scheduler();
    options.max_stored_bytes_per_session = 12345;
    server::ServerOptions server;
    server.max_event_streams_per_session = 3;
    server.max_sessions_per_client_hour = 77;
    server.max_prompt_bytes = 99;
    server.http_threads = 16;
    Harness h(options, server);
    auto res = h.client().Get("/v1/limits");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    const json limits = json::parse(res->body);
    EXPECT_EQ(limits["max_stored_bytes_per_session"], 12345);
    EXPECT_EQ(limits["max_event_streams_per_session"], 3);
    EXPECT_EQ(limits["max_event_streams"], 12);  // 16 threads less a reserve of 4
    EXPECT_EQ(limits["max_sessions_per_client_hour"], 77);
    EXPECT_EQ(limits["max_prompt_bytes"], 99);
    EXPECT_EQ(limits["http_threads"], 16);
    EXPECT_EQ(limits["max_json_depth"], 64);
    EXPECT_EQ(limits["max_header_line_bytes"], 8192);
    EXPECT_EQ(limits["max_uri_bytes"], 8192);
    EXPECT_EQ(limits["max_idempotency_key_bytes"], 255);
    for (const char* key : {"max_body_bytes", "max_pixels", "max_side", "max_queued",
                            "max_queued_per_session", "memory_budget_bytes", "job_timeout_s",
                            "session_ttl_s", "read_timeout_s", "keep_alive_timeout_s"})
        EXPECT_TRUE(limits.contains(key)) << key;
}

TEST(Limits, JsonNestedTooDeeplyIsRefusedBeforeParsing) {
    Harness h;
    const std::string token = h.new_session();
    auto cli = h.client();
    json nested = json::array();
    for (int i = 0; i < 64; ++i)
        nested = json::array({nested});
    auto res = h.submit(token, png_bytes(test_image(8, 8, 1)), {{"extra", nested}});
    expect_error(res, 400, "bad_request");
    EXPECT_NE(res->body.find("nests deeper than 64"), std::string::npos) << res->body;
    // A million levels (what a recursive dump of the parsed body would overflow the stack on).
    const std::string deep = "{\"model\":\"srvgg_x4\",\"x\":" + std::string(1000000, '[') +
                             std::string(1000000, ']') + "}";
    expect_error(cli.Post("/v1/jobs", h.auth(token), deep, "application/json"), 400, "bad_request");
    EXPECT_EQ(h.submit(token, png_bytes(test_image(8, 8, 1)))->status, 202);
}

TEST(Limits, LongPromptIsRefused) {
    server::ServerOptions server;
    server.max_prompt_bytes = 100;
    Harness h(Harness::default_scheduler(), server);
    const std::string token = h.new_session();
    const json body = {{"model", "fashion-unet"}, {"input", {{"prompt", std::string(101, 'a')}}}};
    auto res = h.client().Post("/v1/jobs", h.auth(token), body.dump(), "application/json");
    expect_error(res, 400, "bad_request");
    EXPECT_NE(res->body.find("longer than 100 bytes"), std::string::npos) << res->body;
}

TEST(Limits, LongIdempotencyKeyIsRefused) {
    Harness h;
    const std::string token = h.new_session();
    const std::string png = png_bytes(test_image(8, 8, 4));
    auto res = h.submit(token, png, {}, std::string(256, 'k'));
    expect_error(res, 400, "bad_request");
    EXPECT_NE(res->body.find("longer than 255 bytes"), std::string::npos) << res->body;
    EXPECT_EQ(h.submit(token, png, {}, std::string(255, 'k'))->status, 202);
}

TEST(Limits, EventStreamsPerSession) {
    server::ServerOptions server;
    server.max_event_streams_per_session = 2;
    Harness h(Harness::default_scheduler(), server);
    const std::string a = h.new_session(), b = h.new_session();
    auto first = std::make_unique<EventStream>(h.port, a);
    EventStream second(h.port, a);
    ASSERT_EQ(first->status(), 200) << first->head();
    ASSERT_EQ(second.status(), 200) << second.head();
    EventStream third(h.port, a);
    EXPECT_EQ(third.status(), 429) << third.head();
    EXPECT_NE(third.head().find("Retry-After"), std::string::npos);
    EventStream other(h.port, b);  // another session's streams are its own
    EXPECT_EQ(other.status(), 200) << other.head();
    // A stream whose client left gives its place back within half a second, with nothing
    // written to it (the server checks idle streams), not at the next 15 s heartbeat.
    first.reset();
    int status = 0;
    for (int attempt = 0; attempt < 50 && status != 200; ++attempt) {
        EventStream again(h.port, a);
        status = again.status();
        if (status != 200)
            usleep(100 * 1000);
    }
    EXPECT_EQ(status, 200);
}

TEST(Limits, SessionsPerClientAddress) {
    server::ServerOptions server;
    server.max_sessions_per_client_hour = 3;
    Harness h(Harness::default_scheduler(), server);
    auto cli = h.client();
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(cli.Post("/v1/sessions", "", "application/json")->status, 201);
    // X-Forwarded-For is not believed unless the server is told it sits behind a proxy.
    const httplib::Headers forwarded = {{"X-Forwarded-For", "203.0.113.9"}};
    auto res = cli.Post("/v1/sessions", forwarded, "", "application/json");
    expect_error(res, 429, "too_many_sessions");
    const int retry_after = std::stoi(res->get_header_value("Retry-After"));
    EXPECT_GE(retry_after, 3590);
    EXPECT_LE(retry_after, 3600);
    EXPECT_EQ(cli.Get("/healthz")->status, 200);
}

TEST(Limits, SessionsPerForwardedClientBehindAProxy) {
    server::ServerOptions server;
    server.max_sessions_per_client_hour = 1;
    server.trust_forwarded_for = true;
    Harness h(Harness::default_scheduler(), server);
    auto cli = h.client();
    const auto from = [](const std::string& chain) {
        return httplib::Headers{{"X-Forwarded-For", chain}};
    };
    EXPECT_EQ(cli.Post("/v1/sessions", from("198.51.100.1"), "", "application/json")->status, 201);
    // The proxy appends the address it saw: a client cannot pick its own by prepending one.
    expect_error(cli.Post("/v1/sessions", from("10.9.9.9, 198.51.100.1"), "", "application/json"),
                 429, "too_many_sessions");
    EXPECT_EQ(cli.Post("/v1/sessions", from("198.51.100.2"), "", "application/json")->status, 201);
}

TEST(Limits, StoredBytesPerSession) {
    auto options = Harness::default_scheduler();
    options.start_paused = true;  // only inputs are stored
    const std::string png = png_bytes(test_image(16, 16, 3));
    options.max_stored_bytes_per_session = 2 * png.size() + 10;
    Harness h(options);
    const std::string a = h.new_session(), b = h.new_session();
    ASSERT_EQ(h.submit(a, png)->status, 202);
    auto second = h.submit(a, png);
    ASSERT_EQ(second->status, 202);
    auto full = h.submit(a, png);
    expect_error(full, 507, "session_storage_full");
    EXPECT_NE(full->body.find("delete finished jobs"), std::string::npos) << full->body;
    EXPECT_EQ(h.submit(b, png)->status, 202);  // per session
    const std::string id = json::parse(second->body)["id"];
    EXPECT_EQ(h.client().Delete("/v1/jobs/" + id, h.auth(a))->status, 204);
    EXPECT_EQ(h.submit(a, png)->status, 202);
}

TEST(Limits, OversizedHeaderLineAndRequestTarget) {
    Harness h;
    auto cli = h.client();
    auto header = cli.Get("/healthz", {{"X-Padding", std::string(9000, 'a')}});
    ASSERT_TRUE(header);
    EXPECT_EQ(header->status, 400);
    auto target = cli.Get("/v1/jobs?x=" + std::string(9000, 'a'));
    ASSERT_TRUE(target);
    EXPECT_EQ(target->status, 414);
    EXPECT_EQ(cli.Get("/healthz")->status, 200);
}

TEST(SessionCreationLimiter, SlidesItsHourAndSaysWhenToRetry) {
    server::SessionCreationLimiter limiter;
    const int64_t t0 = 1'000'000'000;
    EXPECT_EQ(limiter.admit("a", t0, 2), 0);
    EXPECT_EQ(limiter.admit("a", t0 + 1000, 2), 0);
    EXPECT_EQ(limiter.admit("a", t0 + 2000, 2), 3598);  // the first leaves at t0 + 1 h
    EXPECT_EQ(limiter.admit("b", t0 + 2000, 2), 0);
    EXPECT_EQ(limiter.admit("a", t0 + server::SessionCreationLimiter::window_ms, 2), 0);
    EXPECT_EQ(limiter.admit("a", t0 + server::SessionCreationLimiter::window_ms + 1, 2), 1);
    EXPECT_EQ(limiter.admit("c", t0, 0), 0);  // 0: no limit
}

TEST(SessionCreationLimiter, MemoryStaysBoundedUnderAFloodOfAddresses) {
    server::SessionCreationLimiter limiter;
    const size_t n = server::SessionCreationLimiter::max_clients + 10;
    for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(limiter.admit("addr" + std::to_string(i), 5000, 1), 0);
    // The first addresses are still counted; those past the bound were admitted uncounted.
    EXPECT_GT(limiter.admit("addr0", 5000, 1), 0);
    EXPECT_EQ(limiter.admit("addr" + std::to_string(n - 1), 5000, 1), 0);
}

}  // namespace
}  // namespace kiln::test
