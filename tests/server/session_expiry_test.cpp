// Idle session expiry: authenticated requests move expires_at to now + the idle TTL, with at
// most one store write a minute per session; expired sessions stay expired. And the memory
// pool's reserved / in use / peak bytes and the plan cache in /metrics.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "scheduler/ids.h"
#include "scheduler/sqlite_job_store.h"
#include "server/api_error.h"
#include "server/auth.h"
#include "tests/server/server_harness.h"

namespace kiln::server {
namespace {

using scheduler::now_ms;

constexpr int64_t hour_ms = 3600 * 1000;

httplib::Request bearer_request(const std::string& token) {
    httplib::Request req;
    req.headers.emplace("Authorization", "Bearer " + token);
    return req;
}

class SessionExpiryTest : public ::testing::Test {
  protected:
    test::TempDir dir_;
    scheduler::SqliteJobStore store_{dir_.path() / "kiln.db"};
};

TEST_F(SessionExpiryTest, UseMovesExpiryForwardAtMostOnceAMinute) {
    NewSession created = make_session(3600);
    EXPECT_EQ(created.session.idle_ttl_ms, hour_ms);
    created.session.expires_at = now_ms() + 5000;  // an old session about to expire
    store_.create_session(created.session);

    const int64_t before = now_ms();
    EXPECT_EQ(authenticate(store_, bearer_request(created.token)), created.session.id);
    const int64_t touched = store_.find_session(created.session.id)->expires_at;
    EXPECT_GE(touched, before + hour_ms);
    EXPECT_LE(touched, now_ms() + hour_ms);

    // Within the minute: no write, the expiry stays where the first use put it.
    EXPECT_EQ(authenticate(store_, bearer_request(created.token)), created.session.id);
    EXPECT_EQ(store_.find_session(created.session.id)->expires_at, touched);
}

TEST_F(SessionExpiryTest, ExpiredSessionIsRefusedAndNotRevived) {
    NewSession created = make_session(3600);
    created.session.expires_at = now_ms() - 1;
    store_.create_session(created.session);
    EXPECT_THROW(authenticate(store_, bearer_request(created.token)), ApiError);
    EXPECT_LT(store_.find_session(created.session.id)->expires_at, now_ms());
    EXPECT_FALSE(store_.touch_session(created.session.id, now_ms(), now_ms() + hour_ms));
    EXPECT_EQ(store_.expired_sessions(now_ms()), std::vector<std::string>{created.session.id});
}

TEST_F(SessionExpiryTest, FixedExpirySessionsAreNotTouched) {
    // Sessions stored before idle expiry (idle_ttl 0) keep their expires_at.
    NewSession created = make_session(3600);
    created.session.idle_ttl_ms = 0;
    created.session.expires_at = now_ms() + 5000;
    store_.create_session(created.session);
    authenticate(store_, bearer_request(created.token));
    EXPECT_EQ(store_.find_session(created.session.id)->expires_at, created.session.expires_at);
}

TEST_F(SessionExpiryTest, TouchNeverMovesExpiryBack) {
    NewSession created = make_session(3600);
    store_.create_session(created.session);
    EXPECT_FALSE(store_.touch_session(created.session.id, now_ms(), now_ms() + 1000));
    EXPECT_EQ(store_.find_session(created.session.id)->expires_at, created.session.expires_at);
}

TEST(MemoryMetrics, PoolPeakAndPlanCacheInMetrics) {
    test::Harness h;
    const std::string token = h.new_session();
    for (int i = 0; i < 2; ++i) {
        auto res = h.submit(token, test::png_bytes(test::test_image(8, 8, i)));
        ASSERT_TRUE(res);
        h.wait_final(token, nlohmann::json::parse(res->body)["id"]);
    }
    auto metrics = h.client().Get("/metrics");
    ASSERT_TRUE(metrics);
    const std::string& text = metrics->body;
    for (const char* line :
         {"kiln_memory_pool_bytes{state=\"reserved\"} ", "kiln_memory_pool_bytes{state=\"peak\"} ",
          "kiln_plan_cache_bytes{model=\"srvgg_x4\"} ", "kiln_plan_cache_total{result=\"hit\"} 1",
          "kiln_plan_cache_total{result=\"miss\"} 1"}) {
        EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
    }
    const auto value = [&](const std::string& name) {
        const size_t at = text.find(name);
        return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size()));
    };
    EXPECT_GT(value("kiln_memory_pool_bytes{state=\"peak\"} "), 0);
    EXPECT_GE(value("kiln_memory_pool_bytes{state=\"peak\"} "),
              value("kiln_memory_pool_bytes{state=\"in_use\"} "));
    EXPECT_GT(value("kiln_plan_cache_bytes{model=\"srvgg_x4\"} "), 0);
}

}  // namespace
}  // namespace kiln::server
