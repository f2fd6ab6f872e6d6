// GET /v1/models, /healthz, /readyz
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
                       models.push_back(
                           {{"name", info.name},
                            {"task", "upscale"},
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
