// A raw connection sending GET /v1/events that stays open after reading the response head,
// as a browser tab's EventSource does (cpp-httplib's client would wait for the body's end).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace kiln::test {

class EventStream {
  public:
    EventStream(int port, const std::string& token) {
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
    ~EventStream() { close(fd_); }
    EventStream(const EventStream&) = delete;
    EventStream& operator=(const EventStream&) = delete;

    int status() const { return head_.size() > 12 ? std::stoi(head_.substr(9, 3)) : 0; }
    const std::string& head() const { return head_; }

  private:
    int fd_ = -1;
    std::string head_;
};

}  // namespace kiln::test
