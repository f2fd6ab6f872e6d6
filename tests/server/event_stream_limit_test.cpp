// Open event streams each hold an HTTP thread; they may take all threads but a reserve, so
// other requests are still served, and a stream past the limit gets 503 (poll instead).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/server/server_harness.h"

namespace kiln::server {
namespace {

// A raw connection sending GET /v1/events; keeps it open after reading the response head.
class Stream {
  public:
    Stream(int port, const std::string& token) {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        timeval timeout{10, 0};
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<uint16_t>(port));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
            return;
        const std::string request =
            "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n";
        if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) < 0)
            return;
        char c;
        while (head_.find("\r\n\r\n") == std::string::npos && recv(fd_, &c, 1, 0) == 1)
            head_.push_back(c);
    }
    ~Stream() { close(fd_); }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    int status() const { return head_.size() > 12 ? std::stoi(head_.substr(9, 3)) : 0; }
    const std::string& head() const { return head_; }

  private:
    int fd_ = -1;
    std::string head_;
};

TEST(EventStreamLimit, StreamsLeaveThreadsForOtherRequests) {
    server::ServerOptions options;
    options.http_threads = 8;  // streams may hold 8 - 4 (the reserve)
    test::Harness h(test::Harness::default_scheduler(), options);
    const std::string token = h.new_session();

    std::vector<std::unique_ptr<Stream>> streams;
    for (int i = 0; i < 4; ++i) {
        streams.push_back(std::make_unique<Stream>(h.port, token));
        ASSERT_EQ(streams.back()->status(), 200) << streams.back()->head();
    }
    Stream refused(h.port, token);
    EXPECT_EQ(refused.status(), 503) << refused.head();
    EXPECT_NE(refused.head().find("Retry-After"), std::string::npos);

    // Everything else is still served while the streams are open.
    auto listed = h.client().Get("/v1/jobs", h.auth(token));
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->status, 200);
    auto res = h.submit(token, test::png_bytes(test::test_image(8, 8, 1)));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202);

    // A stream whose client left frees its slot once the server next writes to it (a job
    // change here), and a new stream is admitted.
    streams.pop_back();
    h.wait_final(token, nlohmann::json::parse(res->body)["id"]);
    int status = 0;
    for (int attempt = 0; attempt < 50 && status != 200; ++attempt) {
        Stream again(h.port, token);
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
