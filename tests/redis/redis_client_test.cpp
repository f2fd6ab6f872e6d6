// The Redis client: URL parsing, binary-safe commands, the script cache, reconnecting.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "core/error.h"
#include "scheduler/redis/redis_client.h"
#include "tests/redis/redis_server.h"

namespace kiln::scheduler {
namespace {

TEST(ParseRedisUrl, AcceptsHostPortAndDatabase) {
    RedisAddress address = parse_redis_url("redis://127.0.0.1:6380/3");
    EXPECT_EQ(address.host, "127.0.0.1");
    EXPECT_EQ(address.port, 6380);
    EXPECT_EQ(address.db, 3);

    address = parse_redis_url("redis://localhost");
    EXPECT_EQ(address.host, "localhost");
    EXPECT_EQ(address.port, 6379);
    EXPECT_EQ(address.db, 0);

    address = parse_redis_url("redis://redis-1.internal/15");
    EXPECT_EQ(address.host, "redis-1.internal");
    EXPECT_EQ(address.port, 6379);
    EXPECT_EQ(address.db, 15);

    EXPECT_EQ(parse_redis_url("redis://h:65535").port, 65535);
    EXPECT_EQ(parse_redis_url("redis://h:1/0").port, 1);
}

TEST(ParseRedisUrl, RejectsMalformedUrlsNamingTheProblem) {
    const std::pair<const char*, const char*> cases[] = {
        {"http://h:6379", "scheme"},
        {"", "scheme"},
        {"redis://", "host is empty"},
        {"redis://:6379", "host is empty"},
        {"redis://user@h:6379", "host \"user@h\""},
        {"redis://h?db=1", "host \"h?db=1\""},
        {"redis://h:", "port \"\""},
        {"redis://h:0", "port \"0\""},
        {"redis://h:65536", "port \"65536\""},
        {"redis://h:-1", "port \"-1\""},
        {"redis://h:http", "port \"http\""},
        {"redis://h:6379x", "port \"6379x\""},
        {"redis://h:99999999999", "port \"99999999999\""},
        {"redis://h:6379/", "database \"\""},
        {"redis://h:6379/16", "database \"16\""},
        {"redis://h:6379/one", "database \"one\""},
        {"redis://h:6379/1/extra", "database \"1/extra\""},
    };
    for (const auto& [url, problem] : cases) {
        try {
            parse_redis_url(url);
            ADD_FAILURE() << url << " was accepted";
        } catch (const core::Error& e) {
            const std::string message = e.what();
            EXPECT_EQ(e.code(), core::ErrorCode::INVALID_ARGUMENT) << message;
            EXPECT_NE(message.find(problem), std::string::npos) << message;
            EXPECT_NE(message.find('"' + std::string(url) + '"'), std::string::npos) << message;
        }
    }
}

TEST(RedisReplyTest, WrongKindIsInternal) {
    RedisReply status;
    status.kind = RedisReply::Kind::STATUS;
    status.str = "OK";
    EXPECT_EQ(status.as_string(), "OK");
    try {
        status.as_integer();
        ADD_FAILURE() << "a status read as an integer";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::INTERNAL);
    }
    EXPECT_THROW(RedisReply().as_string(), core::Error);
}

TEST(RedisUnreachable, IsUnavailableNamingTheAddress) {
    // Bound but not listening: connections are refused, and no server can take the port.
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                       getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    const int port = ntohs(address.sin_port);
    if (bound) {
        try {
            RedisConnection connection({"127.0.0.1", port, 0}, std::chrono::milliseconds(500));
            ADD_FAILURE() << "connected to a port nobody listens on";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), core::ErrorCode::UNAVAILABLE);
            const std::string expected = "redis unreachable at 127.0.0.1:" + std::to_string(port);
            EXPECT_EQ(std::string(e.what()).rfind(expected + ": ", 0), 0u) << e.what();
        }
    }
    close(fd);
    EXPECT_TRUE(bound);
}

// A server that has restarted and is still reading its append-only file answers every
// command with LOADING: up, but not serving yet, so UNAVAILABLE as when it cannot be reached.
// A listener of the test's own plays that server, so no data set has to be big enough to
// keep a real one loading.
TEST(RedisUnreachable, LoadingIsUnavailable) {
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
    ASSERT_EQ(listen(listener, 1), 0);
    const int port = ntohs(address.sin_port);
    std::thread server([listener] {
        const int client = accept(listener, nullptr, nullptr);
        if (client < 0)
            return;
        char buffer[512];
        const std::string loading = "-LOADING Redis is loading the dataset in memory\r\n";
        while (recv(client, buffer, sizeof buffer, 0) > 0)
            send(client, loading.data(), loading.size(), MSG_NOSIGNAL);
        close(client);
    });
    {
        RedisConnection connection({"127.0.0.1", port, 0}, std::chrono::milliseconds(500));
        try {
            connection.command({"PING"});
            ADD_FAILURE() << "a loading server answered";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), core::ErrorCode::UNAVAILABLE) << e.what();
            EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)),
                      std::string::npos)
                << e.what();
            EXPECT_NE(std::string(e.what()).find("LOADING"), std::string::npos) << e.what();
        }
    }
    server.join();
    close(listener);
}

class RedisConnectionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        test::skip_unless_redis_available();
        if (!test::RedisServer::available())
            return;
        connection_.emplace(test::shared_redis_server().address());
        key_ = test::fresh_key_prefix();
    }

    // Script loads since the last CONFIG RESETSTAT, from INFO commandstats.
    int script_loads() {
        const std::string info = connection_->command({"INFO", "commandstats"}).as_string();
        const std::string field = "cmdstat_script|load:calls=";
        const size_t at = info.find(field);
        return at == std::string::npos ? 0 : std::stoi(info.substr(at + field.size()));
    }

    std::optional<RedisConnection> connection_;
    std::string key_;
};

TEST_F(RedisConnectionTest, CommandsAreBinarySafe) {
    RedisConnection& redis = *connection_;
    const std::string key = key_ + std::string("\0key", 4);
    const std::string value("a\0b\r\n$3\r\nc", 10);
    EXPECT_EQ(redis.command({"SET", key, value}).as_string(), "OK");
    const RedisReply got = redis.command({"GET", key});
    EXPECT_EQ(got.kind, RedisReply::Kind::STRING);
    EXPECT_EQ(got.str, value);
    EXPECT_TRUE(redis.command({"GET", key_ + "missing"}).is_nil());

    EXPECT_EQ(redis.command({"INCR", key_ + "n"}).as_integer(), 1);
    redis.command({"RPUSH", key_ + "list", "x", std::string(1, '\0')});
    const RedisReply list = redis.command({"LRANGE", key_ + "list", "0", "-1"});
    ASSERT_EQ(list.kind, RedisReply::Kind::ARRAY);
    ASSERT_EQ(list.elements.size(), 2u);
    EXPECT_EQ(list.elements[1].as_string(), std::string(1, '\0'));
}

TEST_F(RedisConnectionTest, ErrorRepliesAreInternalWithTheServersMessage) {
    RedisConnection& redis = *connection_;
    try {
        redis.command({"NOSUCHCOMMAND", "x"});
        ADD_FAILURE() << "an unknown command succeeded";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::INTERNAL);
        EXPECT_NE(std::string(e.what()).find("unknown command"), std::string::npos) << e.what();
    }
    try {
        redis.eval("return redis.call('INCR', KEYS[1])", {key_}, {});
        redis.command({"SET", key_, "not a number"});
        redis.eval("return redis.call('INCR', KEYS[1])", {key_}, {});
        ADD_FAILURE() << "INCR of a string succeeded";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), core::ErrorCode::INTERNAL);
        EXPECT_NE(std::string(e.what()).find("not an integer"), std::string::npos) << e.what();
    }
    EXPECT_EQ(redis.command({"PING"}).as_string(), "PONG");
}

TEST_F(RedisConnectionTest, SelectsTheDatabase) {
    scheduler::RedisAddress db3 = test::shared_redis_server().address();
    db3.db = 3;
    RedisConnection third(db3);
    third.command({"SET", key_, "in 3"});
    EXPECT_TRUE(connection_->command({"GET", key_}).is_nil());
    EXPECT_EQ(third.command({"GET", key_}).as_string(), "in 3");
}

TEST_F(RedisConnectionTest, EvalLoadsAScriptOnceAndAgainAfterScriptFlush) {
    RedisConnection& redis = *connection_;
    const std::string script = "return ARGV[1] .. redis.call('GET', KEYS[1])";
    redis.command({"SET", key_, "world"});
    redis.command({"CONFIG", "RESETSTAT"});
    EXPECT_EQ(redis.eval(script, {key_}, {"hello "}).as_string(), "hello world");
    EXPECT_EQ(redis.eval(script, {key_}, {"bye "}).as_string(), "bye world");
    EXPECT_EQ(script_loads(), 1);

    redis.command({"SCRIPT", "FLUSH"});
    EXPECT_EQ(redis.eval(script, {key_}, {"again "}).as_string(), "again world");
    EXPECT_EQ(script_loads(), 2);
}

// Without SIGPIPE blocked around hiredis's write(2), this ends the test process.
TEST_F(RedisConnectionTest, ResendsAfterTheServerDroppedTheConnectionMidWrite) {
    RedisConnection& redis = *connection_;
    RedisConnection admin(test::shared_redis_server().address());
    const int64_t id = redis.command({"CLIENT", "ID"}).as_integer();
    admin.command({"CLIENT", "KILL", "ID", std::to_string(id)});
    const std::string big(size_t{32} << 20, 'x');
    EXPECT_EQ(redis.command({"SET", key_, big}).as_string(), "OK");
    EXPECT_EQ(admin.command({"STRLEN", key_}).as_integer(), static_cast<int64_t>(big.size()));
    EXPECT_NE(redis.command({"CLIENT", "ID"}).as_integer(), id);
}

TEST_F(RedisConnectionTest, ReconnectsAfterTheServerRestarts) {
    test::RedisServer own;
    RedisConnection redis(own.address());
    EXPECT_EQ(redis.eval("return 7", {}, {}).as_integer(), 7);
    own.restart();
    EXPECT_EQ(redis.command({"PING"}).as_string(), "PONG");
    own.restart();
    // The new server has never seen the script.
    EXPECT_EQ(redis.eval("return 7", {}, {}).as_integer(), 7);
}

// A crash of the server: commands fail as UNAVAILABLE naming the address (a lost
// connection, then refused ones), and the same connection serves again once it is back, with
// the writes acknowledged before the crash (appendfsync always).
TEST_F(RedisConnectionTest, UnavailableWhileTheServerIsDownThenServesAgain) {
    test::RedisServer own(test::RedisServer::Persistence::AOF_ALWAYS);
    RedisConnection redis(own.address(), std::chrono::milliseconds(500));
    EXPECT_EQ(redis.command({"SET", key_, "kept"}).as_string(), "OK");
    own.kill_now();
    const std::string where = "127.0.0.1:" + std::to_string(own.address().port);
    for (int i = 0; i < 2; ++i) {  // the lost connection, then a refused one
        try {
            redis.command({"GET", key_});
            ADD_FAILURE() << "a command succeeded with the server down";
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), core::ErrorCode::UNAVAILABLE) << e.what();
            EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
        }
    }
    own.start_again();
    EXPECT_EQ(redis.command({"GET", key_}).as_string(), "kept");
    EXPECT_EQ(redis.eval("return 7", {}, {}).as_integer(), 7);
}

}  // namespace
}  // namespace kiln::scheduler
