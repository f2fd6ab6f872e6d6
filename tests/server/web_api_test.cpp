// The routes the web page needs beyond the job contract: GET /v1/limits (the configured
// limits, without a token) and GET /v1/jobs/{id}/input (the submitted image, session-scoped).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/server/server_harness.h"

namespace kiln::test {
namespace {

using nlohmann::json;

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

TEST(WebApi, LimitsReportTheConfiguredValues) {
    scheduler::SchedulerOptions options = Harness::default_scheduler();
    options.max_queued = 7;
    options.max_queued_per_session = 3;
    options.memory_budget = size_t{96} << 20;
    options.decode_limits.max_pixels = 123456;
    options.decode_limits.max_side = 999;
    options.job_timeout = std::chrono::seconds(42);
    server::ServerOptions server;
    server.max_body_bytes = size_t{5} << 20;
    Harness h(options, server);

    auto res = h.client().Get("/v1/limits");  // no token needed, like /v1/models
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    const json limits = json::parse(res->body);
    EXPECT_EQ(limits["max_body_bytes"], size_t{5} << 20);
    EXPECT_EQ(limits["max_pixels"], 123456);
    EXPECT_EQ(limits["max_side"], 999);
    EXPECT_EQ(limits["max_queued"], 7);
    EXPECT_EQ(limits["max_queued_per_session"], 3);
    EXPECT_EQ(limits["memory_budget_bytes"], size_t{96} << 20);
    EXPECT_EQ(limits["job_timeout_s"], 42);
    EXPECT_EQ(limits["content_types"], json::array({"image/png", "image/jpeg"}));
    EXPECT_EQ(limits["request_types"], json::array({"application/json", "multipart/form-data"}));
}

TEST(WebApi, InputIsTheSubmittedPngForItsSessionOnly) {
    Harness h;
    const std::string owner = h.new_session();
    const std::string other = h.new_session();
    const std::string png = png_bytes(test_image(12, 9, 5));
    auto res = h.submit(owner, png);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    const std::string id = json::parse(res->body)["id"];
    const std::string url = "/v1/jobs/" + id + "/input";

    auto input = h.client().Get(url, h.auth(owner));  // kept from submission on
    ASSERT_TRUE(input);
    ASSERT_EQ(input->status, 200) << input->body;
    EXPECT_EQ(input->get_header_value("Content-Type"), "image/png");
    EXPECT_EQ(input->get_header_value("Cache-Control"), "private, max-age=86400");
    EXPECT_EQ(input->body, png);

    // Another session, no token, a malformed id: as for any job that is not there.
    auto foreign = h.client().Get(url, h.auth(other));
    ASSERT_TRUE(foreign);
    EXPECT_EQ(foreign->status, 404);
    EXPECT_EQ(json::parse(foreign->body)["error"]["code"], "not_found");
    auto anonymous = h.client().Get(url);
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
    auto tricky = h.client().Get("/v1/jobs/..%2F" + id + "/input", h.auth(owner));
    ASSERT_TRUE(tricky);
    EXPECT_EQ(tricky->status, 404);

    EXPECT_EQ(h.wait_final(owner, id)["status"], "succeeded");
    auto after = h.client().Get(url, h.auth(owner));  // still kept once finished (for retry)
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, 200);
    EXPECT_EQ(after->body, png);

    auto removed = h.client().Delete("/v1/jobs/" + id, h.auth(owner));
    ASSERT_TRUE(removed);
    EXPECT_EQ(removed->status, 204);
    auto gone = h.client().Get(url, h.auth(owner));
    ASSERT_TRUE(gone);
    EXPECT_EQ(gone->status, 404);
}

TEST(WebApi, InputKeepsAJpegAsJpeg) {
    Harness h;
    const std::string token = h.new_session();
    const std::string jpeg =
        read_file(std::filesystem::path(KILN_TEST_DATA) / "image" / "baseline.jpg");
    ASSERT_FALSE(jpeg.empty());
    httplib::MultipartFormDataItems items = {
        {"request", json{{"model", "srvgg_x4"}}.dump(), "", "application/json"},
        {"image", jpeg, "photo.jpg", "image/jpeg"},
    };
    auto res = h.client().Post("/v1/jobs", h.auth(token), items);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    const std::string id = json::parse(res->body)["id"];
    auto input = h.client().Get("/v1/jobs/" + id + "/input", h.auth(token));
    ASSERT_TRUE(input);
    ASSERT_EQ(input->status, 200) << input->body;
    EXPECT_EQ(input->get_header_value("Content-Type"), "image/jpeg");
    EXPECT_EQ(input->body, jpeg);
    h.wait_final(token, id);
}

}  // namespace
}  // namespace kiln::test
