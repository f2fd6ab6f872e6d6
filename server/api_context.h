// What every route handler reaches: the scheduler, the stores, the model registry and the
// server's options. Handlers parse and answer; the scheduler's workers run the models.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "scheduler/job_store.h"
#include "scheduler/result_store.h"
#include "scheduler/scheduler.h"
#include "server/change_notifier.h"
#include "server/client_limits.h"
#include "server/http_metrics.h"
#include "weights/registry.h"

namespace kiln::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;      // 0: any free port (tests)
    std::string api_key;  // when set, POST /v1/sessions needs Bearer <api_key>
    size_t max_body_bytes = size_t{64} << 20;
    int http_threads = 64;                     // each open event stream holds one
    size_t max_event_streams_per_session = 4;  // GET /v1/events open at once (429 above)
    // POST /v1/sessions per client address in any hour (429 above); 0: no limit.
    size_t max_sessions_per_client_hour = 500;
    // The client's address is the last X-Forwarded-For entry (a reverse proxy in front);
    // off, it is the connection's peer.
    bool trust_forwarded_for = false;
    size_t max_prompt_bytes = 1000;  // openapi.yaml's maxLength of input.prompt
    int64_t session_ttl_s = 7 * 24 * 3600;
    std::string web_dir;  // the web UI's static files, served at /; empty: none
    // The scheduler's options as configured (Service copies them here), for GET /v1/limits.
    scheduler::SchedulerOptions scheduler;
};

struct ApiContext {
    scheduler::Scheduler& scheduler;
    scheduler::JobStore& jobs;
    scheduler::ResultStore& results;
    weights::ModelRegistry& registry;
    const ServerOptions& options;
    ChangeNotifier& changes;
    HttpMetrics http{};
    std::atomic<bool> ready{false};
    SessionStreams streams{};
    SessionCreationLimiter session_creations{};
};

// A handler of a route; session_id is empty for routes that need no session.
using RouteHandler = std::function<
    void(const httplib::Request& req, httplib::Response& res, const std::string& session_id)>;

// Registers a handler for a route of api_routes() (throws when the route is not in the
// table), with authentication and error mapping around it.
class Router {
  public:
    Router(httplib::Server& server, ApiContext& context) : server_(server), context_(context) {}
    void add(const std::string& method, const std::string& path, RouteHandler handler);

  private:
    httplib::Server& server_;
    ApiContext& context_;
};

void send_json(httplib::Response& res, int status, const nlohmann::json& body);

// Route groups, one file each.
void register_session_routes(Router& router, ApiContext& context);
void register_job_routes(Router& router, ApiContext& context);
void register_queue_routes(Router& router, ApiContext& context);
void register_service_routes(Router& router, ApiContext& context);
void register_event_routes(Router& router, ApiContext& context);
void register_gallery_routes(Router& router, ApiContext& context);
void register_metrics_routes(Router& router, ApiContext& context);

}  // namespace kiln::server
