// Open event streams each hold an HTTP thread; they may take all threads but a reserve, so
// other requests are still served, and a stream past the limit gets 503 (poll instead).
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/server/event_stream_client.h"
#include "tests/server/server_harness.h"

namespace kiln::server {
namespace {

TEST(EventStreamLimit, StreamsLeaveThreadsForOtherRequests) {
    server::ServerOptions options;
    options.http_threads = 8;  // streams may hold 8 - 4 (the reserve)
    test::Harness h(test::Harness::default_scheduler(), options);
    const std::string token = h.new_session();

    std::vector<std::unique_ptr<test::EventStream>> streams;
    for (int i = 0; i < 4; ++i) {
        streams.push_back(std::make_unique<test::EventStream>(h.port, token));
        ASSERT_EQ(streams.back()->status(), 200) << streams.back()->head();
    }
    test::EventStream refused(h.port, token);
    EXPECT_EQ(refused.status(), 503) << refused.head();
    EXPECT_NE(refused.head().find("Retry-After"), std::string::npos);

    // Everything else is still served while the streams are open.
    auto listed = h.client().Get("/v1/jobs", h.auth(token));
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->status, 200);
    auto res = h.submit(token, test::png_bytes(test::test_image(8, 8, 1)));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202);

    // A stream whose client left frees its slot (noticed within half a second, or at a job
    // change as here), and a new stream is admitted.
    streams.pop_back();
    h.wait_final(token, nlohmann::json::parse(res->body)["id"]);
    int status = 0;
    for (int attempt = 0; attempt < 50 && status != 200; ++attempt) {
        test::EventStream again(h.port, token);
        status = again.status();
        if (status != 200)
            usleep(100 * 1000);
    }
    EXPECT_EQ(status, 200);

    auto metrics = h.client().Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find(
                  "kiln_http_requests_total{method=\"GET\",route=\"/v1/events\",status=\"503\"} 1"),
              std::string::npos)
        << metrics->body;
}

}  // namespace
}  // namespace kiln::server
