#include "server/auth.h"

#include "core/error.h"
#include "scheduler/ids.h"
#include "server/api_error.h"

namespace kiln::server {

namespace {

std::string bearer(const httplib::Request& req) {
    const std::string header = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (header.size() <= prefix.size() || header.compare(0, prefix.size(), prefix) != 0)
        return {};
    return header.substr(prefix.size());
}

}  // namespace

NewSession make_session(int64_t ttl_s) {
    NewSession out;
    out.session.id = scheduler::random_id();
    out.token = out.session.id + scheduler::random_id();
    out.session.token_hash = scheduler::sha256_hex(out.token);
    out.session.created_at = scheduler::now_ms();
    out.session.expires_at = out.session.created_at + ttl_s * 1000;
    out.session.idle_ttl_ms = ttl_s * 1000;
    return out;
}

std::string authenticate(scheduler::JobStore& jobs, const httplib::Request& req) {
    const std::string token = bearer(req);
    const auto refuse = [] {
        return ApiError(
            ApiCode::UNAUTHORIZED,
            "a valid session token is required: Authorization: Bearer <token> from POST "
            "/v1/sessions");
    };
    if (token.size() != 64)
        throw refuse();
    const std::string id = token.substr(0, 32);
    if (!scheduler::is_valid_id(id))
        throw refuse();
    const auto session = jobs.find_session(id);
    const int64_t now = scheduler::now_ms();
    if (!session || session->expires_at <= now ||
        !scheduler::constant_time_equal(scheduler::sha256_hex(token), session->token_hash)) {
        throw refuse();
    }
    // Idle expiry: push expires_at to now + idle TTL once it has fallen a minute behind.
    const int64_t wanted = now + session->idle_ttl_ms;
    if (session->idle_ttl_ms > 0 && wanted - session->expires_at >= touch_interval_ms) {
        try {
            jobs.touch_session(id, now, wanted);
        } catch (const core::Error&) {
            // A full disk must not lock clients out: the next request tries again.
        }
    }
    return id;
}

bool bearer_equals(const httplib::Request& req, const std::string& key) {
    return scheduler::constant_time_equal(scheduler::sha256_hex(bearer(req)),
                                          scheduler::sha256_hex(key));
}

}  // namespace kiln::server
