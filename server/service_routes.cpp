// GET /v1/models, /v1/limits, /healthz (the process is up), /readyz (it can serve jobs: not
// starting, not draining, its job store within reach)
#include "core/json_depth.h"
#include "server/api_context.h"
#include "server/api_error.h"
#include "server/http_limits.h"

namespace kiln::server {

void register_service_routes(Router& router, ApiContext& context) {
    router.add(
        "GET", "/v1/models",
        [&context](const httplib::Request&, httplib::Response& res, const std::string&) {
            std::map<std::string, size_t> loaded;
            for (const auto& m : context.scheduler.models().loaded())
                loaded[m.name] = m.memory_bytes;
            nlohmann::json models = nlohmann::json::array();
            for (const scheduler::ModelDescription& d : context.scheduler.describe_models()) {
                nlohmann::json model = {{"name", d.name},
                                        {"task", scheduler::task_kind_name(d.task)},
                                        {"arch", d.arch}};
                switch (d.task) {
                    case scheduler::TaskKind::GENERATE:
                        // What a client may ask for: the prompts and the default size.
                        model["parameters"] = d.parameters;
                        model["prompts"] = d.prompts;
                        model["width"] = d.width;
                        model["height"] = d.height;
                        break;
                    case scheduler::TaskKind::UPSCALE: {
                        const auto it = loaded.find(d.name);
                        model["scale"] = d.scale;
                        model["family"] = d.family;
                        model["noise"] = d.noise;
                        model["parameters"] = d.parameters;
                        model["loaded"] = it != loaded.end();
                        model["memory_bytes"] =
                            it != loaded.end() ? it->second : static_cast<size_t>(d.parameters) * 4;
                        break;
                    }
                }
                models.push_back(std::move(model));
            }
            send_json(res, 200, models);
        });
    router.add("GET", "/v1/limits",
               [&context](const httplib::Request&, httplib::Response& res, const std::string&) {
                   const ServerOptions& server = context.options;
                   const scheduler::SchedulerOptions& s = server.scheduler;
                   send_json(
                       res, 200,
                       {{"max_body_bytes", server.max_body_bytes},
                        {"max_header_line_bytes", http_limits::header_line_bytes},
                        {"max_uri_bytes", http_limits::uri_bytes},
                        {"http_threads", server.http_threads},
                        {"read_timeout_s", http_limits::read_timeout_s},
                        {"keep_alive_timeout_s", http_limits::keep_alive_timeout_s},
                        {"max_event_streams", http_limits::event_streams(server.http_threads)},
                        {"max_event_streams_per_session", server.max_event_streams_per_session},
                        {"max_sessions_per_client_hour", server.max_sessions_per_client_hour},
                        {"session_ttl_s", server.session_ttl_s},
                        {"max_json_depth", core::max_json_depth},
                        {"max_prompt_bytes", server.max_prompt_bytes},
                        {"max_idempotency_key_bytes", http_limits::idempotency_key_bytes},
                        {"max_pixels", s.decode_limits.max_pixels},
                        {"max_side", s.decode_limits.max_side},
                        {"max_queued", s.max_queued},
                        {"max_queued_per_session", s.max_queued_per_session},
                        {"max_stored_bytes_per_session", s.max_stored_bytes_per_session},
                        {"memory_budget_bytes", s.memory_budget},
                        {"job_timeout_s", s.job_timeout.count() / 1000},
                        {"content_types", {"image/png", "image/jpeg"}},
                        {"request_types", {"application/json", "multipart/form-data"}}});
               });
    router.add("GET", "/healthz",
               [](const httplib::Request&, httplib::Response& res, const std::string&) {
                   send_json(res, 200, {{"status", "ok"}});
               });
    router.add("GET", "/readyz",
               [&context](const httplib::Request&, httplib::Response& res, const std::string&) {
                   if (!context.ready || !context.scheduler.accepting()) {
                       throw ApiError(ApiCode::NOT_READY, "not ready: starting or draining", 1);
                   }
                   // One cheap read: a node whose shared store is out of reach can serve no
                   // job route, so a balancer should send its clients elsewhere (503
                   // store_unavailable from the store's error).
                   (void)context.jobs.last_update_seq();
                   send_json(res, 200, {{"status", "ready"}});
               });
}

}  // namespace kiln::server
