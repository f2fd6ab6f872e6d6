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

NewSession make_session(int64_t ttl_s);
// The session id of a valid, unexpired Bearer token; throws ServiceError UNAUTHORIZED.
std::string authenticate(scheduler::JobStore& jobs, const httplib::Request& req);
// True when the request carries `Authorization: Bearer <key>` (constant-time compare).
bool bearer_equals(const httplib::Request& req, const std::string& key);

}  // namespace kiln::server
