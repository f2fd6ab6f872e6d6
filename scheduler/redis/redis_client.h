// A small synchronous Redis client over hiredis, for state that several kiln nodes share.
// Replies are copied into owned values at once, so no hiredis type leaves this file pair.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

struct redisContext;

namespace kiln::scheduler {

struct RedisAddress {
    std::string host;
    int port = 6379;
    int db = 0;
};

// redis://HOST[:PORT][/DB], PORT 1..65535 (default 6379), DB 0..15 (default 0); throws
// core::Error(INVALID_ARGUMENT) naming the problem and the URL.
RedisAddress parse_redis_url(const std::string& url);

struct RedisReply {
    enum class Kind { NIL, INTEGER, STRING, STATUS, ARRAY };

    Kind kind = Kind::NIL;
    int64_t integer = 0;
    std::string str;  // STRING and STATUS
    std::vector<RedisReply> elements;

    bool is_nil() const { return kind == Kind::NIL; }
    // Throw core::Error(INTERNAL) on another kind: a reply of the wrong shape is a bug.
    int64_t as_integer() const;
    const std::string& as_string() const;  // STRING or STATUS
};

// One connection; not thread-safe (one per thread or per queue). A lost connection is
// reopened once per command and the command sent again, so a command that reached the server
// before the connection broke may run twice: scripts sent here should tolerate that or be
// reads. Cannot reach the server, the connection lost again after the reconnect, or a server
// still loading its data after a restart: core::Error(UNAVAILABLE), naming HOST:PORT ("redis
// unreachable at HOST:PORT: ..."); callers retry those later. Another transport failure:
// core::Error(IO); an error reply: core::Error(INTERNAL) with the server's message.
class RedisConnection {
  public:
    explicit RedisConnection(RedisAddress address,
                             std::chrono::milliseconds timeout = std::chrono::seconds(2));
    ~RedisConnection();
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    RedisReply command(const std::vector<std::string>& args);
    // EVALSHA, loading the script once per connection (again after the server forgot it).
    RedisReply eval(const std::string& script,
                    const std::vector<std::string>& keys,
                    const std::vector<std::string>& args);

    const RedisAddress& address() const { return address_; }

  private:
    struct ContextDeleter {
        void operator()(redisContext* context) const;
    };
    struct Outcome {
        RedisReply reply;
        std::optional<std::string> error;  // the server's error reply
    };

    void connect();
    Outcome send(const std::vector<std::string>& args);
    std::string load_script(const std::string& script);
    std::string where() const;

    RedisAddress address_;
    std::chrono::milliseconds timeout_;
    std::unique_ptr<redisContext, ContextDeleter> context_;    // null after a failed reconnect
    std::unordered_map<std::string, std::string> script_sha_;  // script text -> SHA1
};

}  // namespace kiln::scheduler
