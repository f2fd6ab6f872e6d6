// Session tokens: "<session id><secret>" (64 hex characters); only its SHA-256 is stored and
// the comparison takes constant time.
#pragma once

#include <httplib.h>

#include <string>

#include "scheduler/job_store.h"

namespace kiln::server {

struct NewSession {
    scheduler::Session session;
    std::string token;
};

// A session that expires after `ttl_s` seconds without use (each authenticated request
// counts as use; see authenticate).
NewSession make_session(int64_t ttl_s);
// The session id of a valid, unexpired Bearer token; throws ApiError UNAUTHORIZED.
// Counts as the session's use: expires_at moves to now + its idle TTL, written to the store
// at most once a minute per session (touch_interval_ms) so requests stay read-only.
std::string authenticate(scheduler::JobStore& jobs, const httplib::Request& req);
constexpr int64_t touch_interval_ms = 60 * 1000;
// True when the request carries `Authorization: Bearer <key>` (constant-time compare).
bool bearer_equals(const httplib::Request& req, const std::string& key);

}  // namespace kiln::server
