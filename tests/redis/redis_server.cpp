#include "tests/redis/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/small_file.h"

namespace kiln::test {

namespace {

using Clock = std::chrono::steady_clock;

std::string find_on_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    if (!path)
        return {};
    std::string_view rest = path;
    while (true) {
        const size_t colon = rest.find(':');
        const std::string dir(rest.substr(0, colon));
        const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
        if (access(candidate.c_str(), X_OK) == 0)
            return candidate;
        if (colon == std::string_view::npos)
            return {};
        rest.remove_prefix(colon + 1);
    }
}

const std::string& redis_server_path() {
    static const std::string path = find_on_path("redis-server");
    return path;
}

sockaddr_in loopback(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    return address;
}

// Free a moment ago: the kernel's choice for 127.0.0.1:0 (start() copes with losing a race).
int pick_free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error("socket() failed");
    sockaddr_in address = loopback(0);
    socklen_t length = sizeof address;
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    close(fd);
    if (!ok)
        throw std::runtime_error("cannot bind a loopback port");
    return ntohs(address.sin_port);
}

// Over a plain socket, so that the harness does not depend on the client under test. Asks
// for the process id, since another test's server may have taken the port first.
bool answers_as(int port, pid_t pid) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    const sockaddr_in address = loopback(port);
    timeval timeout{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    std::string answer;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
        const std::string_view info = "INFO server\r\n";
        if (send(fd, info.data(), info.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(info.size())) {
            char buffer[4096];
            while (true) {
                const size_t at = answer.find("process_id:");
                if (at != std::string::npos && answer.find("\r\n", at) != std::string::npos)
                    break;
                const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
                if (n <= 0)
                    break;
                answer.append(buffer, static_cast<size_t>(n));
            }
        }
    }
    close(fd);
    return answer.find("process_id:" + std::to_string(pid) + "\r\n") != std::string::npos;
}

}  // namespace

bool RedisServer::available() {
    return !redis_server_path().empty();
}

RedisServer::RedisServer(Persistence persistence)
    : persistence_(persistence), log_(dir_.path() / "redis-server.log") {
    if (!available())
        throw std::runtime_error("redis-server is not on PATH (scripts/install-deps.sh)");
    for (int attempt = 0; attempt < 3; ++attempt) {
        port_ = pick_free_port();
        if (start())
            return;
    }
    throw std::runtime_error("redis-server did not start on 3 ports; its log:\n" + log_tail());
}

RedisServer::~RedisServer() {
    stop();
}

void RedisServer::restart() {
    stop();
    start_again();
}

void RedisServer::kill_now() {
    if (pid_ < 0)
        return;
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

void RedisServer::start_again() {
    if (!start())
        throw std::runtime_error("redis-server did not start again on port " +
                                 std::to_string(port_) + "; its log:\n" + log_tail());
}

bool RedisServer::start() {
    const bool aof = persistence_ == Persistence::AOF_ALWAYS;
    std::vector<std::string> args = {redis_server_path(),
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     aof ? "yes" : "no",
                                     "--appendfsync",
                                     "always",
                                     "--dir",
                                     dir_.path().string(),
                                     "--daemonize",
                                     "no",
                                     "--loglevel",
                                     "warning"};
    std::vector<char*> argv;
    for (std::string& arg : args)
        argv.push_back(arg.data());
    argv.push_back(nullptr);

    const int log_fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0)
        throw std::runtime_error("cannot open " + log_.string());
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        close(log_fd);
        throw std::runtime_error("fork() failed");
    }
    if (pid == 0) {
        // Only async-signal-safe calls until exec: the test may have other threads.
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // no server outlives a test killed by a timeout
        if (getppid() != parent)
            _exit(126);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(log_fd);
    pid_ = pid;

    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
        if (answers_as(port_, pid_))
            return true;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    throw std::runtime_error("redis-server did not answer within 10 s; its log:\n" + log_tail());
}

void RedisServer::stop() {
    if (pid_ < 0)
        return;
    kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (true) {
        const pid_t done = waitpid(pid_, &status, WNOHANG);
        if (done == pid_ || (done < 0 && errno != EINTR))
            break;
        if (Clock::now() > deadline) {
            kill(pid_, SIGKILL);
            waitpid(pid_, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
}

std::string RedisServer::log_tail() const {
    try {
        const std::string text = core::read_small_file(log_);
        return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
    } catch (const core::Error& e) {
        return e.what();
    }
}

void skip_unless_redis_available() {
    if (RedisServer::available())
        return;
    const std::string why = "redis-server is not on PATH; scripts/install-deps.sh installs it";
    const char* require = std::getenv("KILN_REQUIRE_REDIS");
    if (require && std::string_view(require) == "1")
        FAIL() << why << " (KILN_REQUIRE_REDIS=1 makes this a failure)";
    GTEST_SKIP() << why;
}

RedisServer& shared_redis_server() {
    static RedisServer server;
    return server;
}

std::string fresh_key_prefix() {
    static std::atomic<int> next{0};
    return "kiln-test-" + std::to_string(next++);
}

}  // namespace kiln::test
