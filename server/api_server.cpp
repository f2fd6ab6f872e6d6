#include "server/api_server.h"

#include <spdlog/spdlog.h>

#include "engine/core/error.h"
#include "server/http_error.h"

namespace kiln::server {

namespace {

// Errors cpp-httplib produces itself (no route, body over the limit) in the API's shape.
HttpError transport_error(int status, const ServerOptions& options) {
    switch (status) {
        case 404:
            return {404, "not_found", "no such route; see /openapi.yaml or docs/api.md"};
        case 413:
            return {413, "payload_too_large",
                    "the request body is over the limit of " +
                        std::to_string(options.max_body_bytes) + " bytes"};
        case 400:
            return {400, "bad_request", "malformed HTTP request"};
        default:
            return {status, "http_" + std::to_string(status), "the request could not be served"};
    }
}

}  // namespace

ApiServer::ApiServer(scheduler::Scheduler& scheduler,
                     scheduler::JobStore& jobs,
                     scheduler::ResultStore& results,
                     weights::ModelRegistry& registry,
                     ChangeNotifier& changes,
                     ServerOptions options)
    : options_(std::move(options)), context_{scheduler, jobs,     results,
                                             registry,  options_, changes} {
    const int threads = std::max(1, options_.http_threads);
    http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http_.set_payload_max_length(options_.max_body_bytes);
    http_.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request&, httplib::Response& res) {
            if (!res.body.empty())
                return httplib::Server::HandlerResponse::Unhandled;  // a handler's JSON error
            send_error(res, transport_error(res.status, options_));
            return httplib::Server::HandlerResponse::Handled;
        }));
    http_.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
            send_error(res, http_error_from(error));
        });
    Router router(http_, context_);
    register_session_routes(router, context_);
    register_job_routes(router, context_);
    register_queue_routes(router, context_);
    register_service_routes(router, context_);
    register_event_routes(router, context_);
    register_gallery_routes(router, context_);
    register_metrics_routes(router, context_);
    // The page (server/web/) at /, after the API routes so /v1/* never reaches the files.
    if (!options_.web_dir.empty() && !http_.set_mount_point("/", options_.web_dir)) {
        spdlog::warn("web UI folder {} not found: the page is not served", options_.web_dir);
    }
}

ApiServer::~ApiServer() {
    stop();
}

int ApiServer::start() {
    int port = options_.port;
    if (port == 0) {
        port = http_.bind_to_any_port(options_.host);
    } else if (!http_.bind_to_port(options_.host, port)) {
        port = -1;
    }
    if (port < 0) {
        throw Error(ErrorCode::IO,
                    "cannot listen on " + options_.host + ":" + std::to_string(options_.port));
    }
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    return port;
}

void ApiServer::stop() {
    context_.ready = false;
    context_.changes.close();  // ends open event streams so their threads come back
    if (thread_.joinable()) {
        http_.stop();
        thread_.join();
    }
}

}  // namespace kiln::server
