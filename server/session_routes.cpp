// POST /v1/sessions, DELETE /v1/sessions/current
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
