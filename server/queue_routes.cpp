// The session's queue controls: GET /v1/queue, POST /v1/queue/pause|resume, DELETE /v1/queue
#include "server/api_context.h"

namespace kiln::server {

namespace {

nlohmann::json queue_json(scheduler::Scheduler& scheduler, const std::string& session_id) {
    const scheduler::QueueInfo info = scheduler.queue_info(session_id);
    return {{"paused", info.paused}, {"queued", info.queued}, {"running", info.running}};
}

}  // namespace

void register_queue_routes(Router& router, ApiContext& context) {
    auto& scheduler = context.scheduler;
    router.add("GET", "/v1/queue",
               [&scheduler](const httplib::Request&, httplib::Response& res,
                            const std::string& session_id) {
                   send_json(res, 200, queue_json(scheduler, session_id));
               });
    router.add("POST", "/v1/queue/pause",
               [&scheduler](const httplib::Request&, httplib::Response& res,
                            const std::string& session_id) {
                   scheduler.set_session_paused(session_id, true);
                   send_json(res, 200, queue_json(scheduler, session_id));
               });
    router.add("POST", "/v1/queue/resume",
               [&scheduler](const httplib::Request&, httplib::Response& res,
                            const std::string& session_id) {
                   scheduler.set_session_paused(session_id, false);
                   send_json(res, 200, queue_json(scheduler, session_id));
               });
    router.add("DELETE", "/v1/queue",
               [&scheduler](const httplib::Request&, httplib::Response& res,
                            const std::string& session_id) {
                   const size_t cancelled = scheduler.clear_session_queue(session_id);
                   nlohmann::json body = queue_json(scheduler, session_id);
                   body["cancelled"] = cancelled;
                   send_json(res, 200, body);
               });
}

}  // namespace kiln::server
