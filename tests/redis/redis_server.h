// A redis-server of the test's own: a free loopback port, a fresh directory, no persistence
// unless asked, stopped by the destructor. Tests need redis-server on PATH
// (scripts/install-deps.sh).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "scheduler/redis/redis_client.h"
#include "tests/scheduler/temp_dir.h"

namespace kiln::test {

class RedisServer {
  public:
    static bool available();  // redis-server is on PATH

    enum class Persistence {
        NONE,
        // appendonly yes, appendfsync always: every acknowledged write survives a crash and
        // comes back when the server starts again in the same directory.
        AOF_ALWAYS,
    };

    // Waits (up to 10 s) until it answers PING; throws std::runtime_error with its log if not.
    explicit RedisServer(Persistence persistence = Persistence::NONE);
    ~RedisServer();
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    scheduler::RedisAddress address() const { return {"127.0.0.1", port_, 0}; }
    // Stops the server and starts a new one on the same port (its data is gone without
    // persistence).
    void restart();
    // Kills the server with SIGKILL, as a crash; start_again() starts it on the same port and
    // directory.
    void kill_now();
    void start_again();

  private:
    bool start();  // false when it exited at once (the port was taken meanwhile)
    void stop();
    std::string log_tail() const;

    Persistence persistence_;
    TempDir dir_;
    std::filesystem::path log_;
    int port_ = 0;
    pid_t pid_ = -1;
};

// For a fixture's constructor or SetUp(): without redis-server, records a skip naming
// scripts/install-deps.sh, or a failure when KILN_REQUIRE_REDIS=1 (so CI can insist).
void skip_unless_redis_available();

// One server for the whole test binary, started on first use.
RedisServer& shared_redis_server();

// A key prefix no other queue in this process uses.
std::string fresh_key_prefix();

}  // namespace kiln::test
