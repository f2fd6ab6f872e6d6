// GET /v1/models, /v1/limits, /healthz, /readyz
#include "scheduler/service_error.h"
#include "server/api_context.h"

namespace kiln::server {

void register_service_routes(Router& router, ApiContext& context) {
    router.add("GET", "/v1/models",
               [&context](const httplib::Request&, httplib::Response& res, const std::string&) {
                   std::map<std::string, size_t> loaded;
                   for (const auto& m : context.scheduler.models().loaded())
                       loaded[m.name] = m.memory_bytes;
                   nlohmann::json models = nlohmann::json::array();
                   for (const weights::ModelInfo& info : context.registry.list()) {
                       if (!info.error.empty())
                           continue;  // unreadable files are logged, not served
                       const auto it = loaded.find(info.name);
                       if (info.task == "generate") {
                           // What a client may ask for: the prompts and the default size.
                           const auto model = context.scheduler.generation_model(info.name);
                           if (!model)
                               continue;
                           const int side = model->unet->config().sample_size;
                           models.push_back({{"name", info.name},
                                             {"task", info.task},
                                             {"arch", info.arch_name},
                                             {"parameters", info.param_count},
                                             {"prompts", model->encoder->vocabulary()},
                                             {"width", side},
                                             {"height", side}});
                           continue;
                       }
                       models.push_back(
                           {{"name", info.name},
                            {"task", info.task},
                            {"arch", info.arch_name},
                            {"scale", info.scale},
                            {"parameters", info.param_count},
                            {"loaded", it != loaded.end()},
                            {"memory_bytes", it != loaded.end()
                                                 ? it->second
                                                 : static_cast<size_t>(info.param_count) * 4}});
                   }
                   send_json(res, 200, models);
               });
    router.add("GET", "/v1/limits",
               [&context](const httplib::Request&, httplib::Response& res, const std::string&) {
                   const ServerOptions& server = context.options;
                   const scheduler::SchedulerOptions& s = server.scheduler;
                   send_json(res, 200,
                             {{"max_body_bytes", server.max_body_bytes},
                              {"max_pixels", s.decode_limits.max_pixels},
                              {"max_side", s.decode_limits.max_side},
                              {"max_queued", s.max_queued},
                              {"max_queued_per_session", s.max_queued_per_session},
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
                       throw scheduler::ServiceError(scheduler::ServiceCode::DRAINING,
                                                     "not ready: starting or draining", 1);
                   }
                   send_json(res, 200, {{"status", "ready"}});
               });
}

}  // namespace kiln::server
