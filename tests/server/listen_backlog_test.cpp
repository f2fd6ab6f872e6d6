// A burst of clients connecting at once is served: the listen backlog is raised above
// cpp-httplib's built-in 5 (with 5, most of 300 simultaneous connections overflow the
// accept queue and wait seconds for SYN retransmits, or are never answered).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/server/server_harness.h"

namespace kiln::server {
namespace {

TEST(ListenBacklog, BurstOfSimultaneousConnectionsIsAnswered) {
    test::Harness h;
    constexpr int count = 300;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(h.port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    std::vector<pollfd> fds;
    std::vector<bool> sent(count, false);
    for (int i = 0; i < count; ++i) {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        ASSERT_GE(fd, 0);
        connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
        fds.push_back(pollfd{fd, POLLOUT | POLLIN, 0});
    }
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int answered = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (answered < count && std::chrono::steady_clock::now() < deadline) {
        ASSERT_GE(poll(fds.data(), fds.size(), 100), 0);
        for (size_t i = 0; i < fds.size(); ++i) {
            pollfd& p = fds[i];
            if (p.fd < 0)
                continue;
            if (!sent[i] && (p.revents & POLLOUT)) {
                sent[i] = send(p.fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                          static_cast<ssize_t>(request.size());
                p.events = POLLIN;
            }
            if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                char buffer[64] = {};
                const ssize_t n = recv(p.fd, buffer, sizeof buffer - 1, 0);
                if (n > 0 && std::string(buffer).rfind("HTTP/1.1 200", 0) == 0)
                    ++answered;
                close(p.fd);
                p.fd = -1;
            }
        }
    }
    for (const pollfd& p : fds) {
        if (p.fd >= 0)
            close(p.fd);
    }
    EXPECT_EQ(answered, count);
}

}  // namespace
}  // namespace kiln::server
