// Every route the server registers (server/routes.cpp) is described in openapi.yaml.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "server/routes.h"

namespace kiln::server {
namespace {

// path -> the lowercase methods under it, from the `paths:` block of an OpenAPI YAML file.
std::map<std::string, std::set<std::string>> openapi_operations(const std::string& file) {
    std::ifstream in(file);
    std::map<std::string, std::set<std::string>> ops;
    std::string line, current;
    bool in_paths = false;
    while (std::getline(in, line)) {
        if (line.rfind("paths:", 0) == 0) {
            in_paths = true;
            continue;
        }
        if (in_paths && !line.empty() && !std::isspace(static_cast<unsigned char>(line[0])))
            in_paths = false;
        if (!in_paths)
            continue;
        if (line.rfind("  /", 0) == 0 && line.back() == ':') {
            current = line.substr(2, line.size() - 3);
        } else if (line.rfind("    ", 0) == 0 && line[4] != ' ' && line.back() == ':') {
            ops[current].insert(line.substr(4, line.size() - 5));
        }
    }
    return ops;
}

TEST(OpenApi, EveryServedRouteIsDocumented) {
    const auto ops = openapi_operations(KILN_OPENAPI);
    ASSERT_FALSE(ops.empty()) << "no paths read from " << KILN_OPENAPI;
    for (const RouteSpec& route : api_routes()) {
        std::string method = route.method;
        std::transform(method.begin(), method.end(), method.begin(), ::tolower);
        const auto it = ops.find(route.path);
        ASSERT_NE(it, ops.end()) << route.path << " is missing from openapi.yaml";
        EXPECT_TRUE(it->second.count(method)) << route.method << " " << route.path;
    }
}

TEST(OpenApi, RouteRegexMatchesOneSegmentPerParameter) {
    EXPECT_EQ(route_regex("/v1/jobs/{id}/outputs/{k}"), "/v1/jobs/([^/]+)/outputs/([^/]+)");
    EXPECT_EQ(route_regex("/v1/jobs"), "/v1/jobs");
}

}  // namespace
}  // namespace kiln::server
