// POST /v1/sessions, DELETE /v1/sessions/current
#include <algorithm>

#include "scheduler/job.h"
#include "server/api_context.h"
#include "server/api_error.h"
#include "server/auth.h"
#include "server/job_json.h"

namespace kiln::server {

void register_session_routes(Router& router, ApiContext& context) {
    router.add(
        "POST", "/v1/sessions",
        [&context](const httplib::Request& req, httplib::Response& res, const std::string&) {
            if (!context.options.api_key.empty() && !bearer_equals(req, context.options.api_key)) {
                throw ApiError(ApiCode::UNAUTHORIZED,
                               "creating a session needs the server's API key: Authorization: "
                               "Bearer <key>");
            }
            const size_t per_hour = context.options.max_sessions_per_client_hour;
            const std::string client = client_address(req, context.options.trust_forwarded_for);
            if (const int64_t wait_s =
                    context.session_creations.admit(client, scheduler::now_ms(), per_hour)) {
                throw ApiError(ApiCode::TOO_MANY_SESSIONS,
                               "this address created " + std::to_string(per_hour) +
                                   " sessions in the last hour (the limit); reuse a session's "
                                   "token, or retry later",
                               static_cast<int>(std::min<int64_t>(wait_s, 3600)));
            }
            const NewSession created = make_session(context.options.session_ttl_s);
            context.jobs.create_session(created.session);
            send_json(res, 201,
                      {{"session_id", created.session.id},
                       {"token", created.token},
                       {"expires_at", json_time(created.session.expires_at)}});
        });
    router.add(
        "DELETE", "/v1/sessions/current",
        [&context](const httplib::Request&, httplib::Response& res, const std::string& session_id) {
            context.scheduler.remove_session(session_id);
            res.status = 204;
        });
}

}  // namespace kiln::server
