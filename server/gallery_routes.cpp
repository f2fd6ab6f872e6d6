// GET /v1/gallery: this session's outputs, newest first, with thumbnail URLs.
#include <charconv>

#include "server/api_context.h"
#include "server/api_error.h"
#include "server/job_json.h"
#include "server/output_files.h"

namespace kiln::server {

namespace {

int64_t query_int(const httplib::Request& req,
                  const char* name,
                  int64_t min,
                  int64_t max,
                  int64_t fallback) {
    if (!req.has_param(name))
        return fallback;
    const std::string text = req.get_param_value(name);
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
        throw ApiError(ApiCode::BAD_REQUEST,
                       std::string("\"") + name + "\" must be an integer from " +
                           std::to_string(min) + " to " + std::to_string(max));
    }
    return v;
}

}  // namespace

void register_gallery_routes(Router& router, ApiContext& context) {
    router.add("GET", "/v1/gallery",
               [&context](const httplib::Request& req, httplib::Response& res,
                          const std::string& session_id) {
                   scheduler::JobQuery query;
                   query.status = scheduler::JobStatus::SUCCEEDED;
                   query.limit = static_cast<int>(query_int(req, "limit", 1, 100, 20));
                   query.before_seq = query_int(req, "cursor", 1, INT64_MAX, 0);
                   const auto jobs = context.scheduler.list(session_id, query);
                   nlohmann::json items = nlohmann::json::array();
                   for (const scheduler::Job& job : jobs) {
                       for (const scheduler::JobOutput& o : job.outputs) {
                           items.push_back({{"job_id", job.id},
                                            {"index", o.index},
                                            {"url", output_url(job.id, o.index)},
                                            {"thumbnail_url", thumbnail_url(job.id, o.index)},
                                            {"width", o.width},
                                            {"height", o.height},
                                            {"model", job.model},
                                            {"created_at", json_time(job.finished_at)}});
                       }
                   }
                   const bool more = static_cast<int>(jobs.size()) == query.limit;
                   send_json(res, 200,
                             {{"items", items},
                              {"next_cursor", more ? nlohmann::json(std::to_string(jobs.back().seq))
                                                   : nlohmann::json(nullptr)}});
               });
}

}  // namespace kiln::server
