#include "server/routes.h"

namespace kiln::server {

const std::vector<RouteSpec>& api_routes() {
    static const std::vector<RouteSpec> routes = {
        {"POST", "/v1/sessions", false},
        {"DELETE", "/v1/sessions/current", true},
        {"POST", "/v1/jobs", true},
        {"GET", "/v1/jobs", true},
        {"GET", "/v1/jobs/{id}", true},
        {"DELETE", "/v1/jobs/{id}", true},
        {"POST", "/v1/jobs/{id}/cancel", true},
        {"POST", "/v1/jobs/{id}/retry", true},
        {"GET", "/v1/jobs/{id}/outputs/{k}", true},
        {"GET", "/v1/jobs/{id}/outputs/{k}/thumbnail", true},
        {"GET", "/v1/jobs/{id}/input", true},
        {"GET", "/v1/gallery", true},
        {"GET", "/v1/queue", true},
        {"POST", "/v1/queue/pause", true},
        {"POST", "/v1/queue/resume", true},
        {"DELETE", "/v1/queue", true},
        {"GET", "/v1/events", true},
        {"GET", "/v1/models", false},
        {"GET", "/v1/limits", false},
        {"GET", "/healthz", false},
        {"GET", "/metrics", false},
        {"GET", "/readyz", false},
    };
    return routes;
}

std::string route_regex(const std::string& path) {
    std::string out;
    for (size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '{') {
            i = path.find('}', i);
            out += "([^/]+)";
        } else {
            out += path[i];
        }
    }
    return out;
}

}  // namespace kiln::server
