#include "server/api_context.h"

#include <algorithm>

#include "core/error.h"
#include "server/auth.h"
#include "server/http_error.h"
#include "server/routes.h"

namespace kiln::server {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
}

void Router::add(const std::string& method, const std::string& path, RouteHandler handler) {
    const auto& routes = api_routes();
    const auto spec = std::find_if(routes.begin(), routes.end(), [&](const RouteSpec& r) {
        return r.method == method && r.path == path;
    });
    if (spec == routes.end())
        throw core::Error(core::ErrorCode::INTERNAL,
                          "route " + method + " " + path + " is not in routes.cpp");
    const bool needs_session = spec->needs_session;
    ApiContext& context = context_;
    auto wrapped = [&context, needs_session, method, path, handler = std::move(handler)](
                       const httplib::Request& req, httplib::Response& res) {
        try {
            const std::string session_id =
                needs_session ? authenticate(context.jobs, req) : std::string();
            handler(req, res, session_id);
        } catch (...) {
            send_error(res, http_error_from(std::current_exception()));
        }
        context.http.record(method, path, res.status);
    };
    const std::string pattern = route_regex(path);
    if (method == "GET")
        server_.Get(pattern, wrapped);
    else if (method == "POST")
        server_.Post(pattern, wrapped);
    else if (method == "DELETE")
        server_.Delete(pattern, wrapped);
    else
        throw core::Error(core::ErrorCode::INTERNAL, "unsupported method " + method);
}

}  // namespace kiln::server
