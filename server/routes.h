// Every HTTP route kiln serves, in one table: the server registers handlers only through it
// and a test checks each entry against openapi.yaml.
#pragma once

#include <string>
#include <vector>

namespace kiln::server {

struct RouteSpec {
    std::string method;  // "GET", "POST", "DELETE"
    std::string path;    // OpenAPI template: /v1/jobs/{id}
    bool needs_session;  // Authorization: Bearer <session token>
};

const std::vector<RouteSpec>& api_routes();

// The cpp-httplib pattern of a template: each {name} matches one path segment.
std::string route_regex(const std::string& path);

}  // namespace kiln::server
