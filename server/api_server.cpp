#include "server/api_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>

#include "core/error.h"
#include "server/http_error.h"
#include "server/http_limits.h"
#include "server/multipart.h"

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

// cpp-httplib 0.11.4 (Debian's shared library) listens with a backlog of 5
// (CPPHTTPLIB_LISTEN_BACKLOG, fixed when the library was built), so a burst of clients
// connecting at once overflows the accept queue and waits for SYN retransmits (1 s, 3 s...)
// or fails. Linux lets listen() be called again on a listening socket to raise the backlog
// (the kernel caps it at net.core.somaxconn).
constexpr int listen_backlog = SOMAXCONN;

// An open GET /v1/events holds an HTTP thread (http_limits.h). Unbounded, as many streams as
// --http-threads (a few browser tabs) would leave no thread for any other request: every
// client, streaming or not, would wait. Past the limit a new stream gets 503 with
// Retry-After and the client polls instead (GET /v1/jobs?updated_since=), as the web page
// does when its stream fails.
struct EventStreamSlots {
    std::mutex mutex;
    std::set<const httplib::Request*> open;  // admitted stream requests still being served
    size_t limit = 0;
};

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
    http_.set_read_timeout(http_limits::read_timeout_s);
    http_.set_write_timeout(http_limits::write_timeout_s);
    http_.set_keep_alive_timeout(http_limits::keep_alive_timeout_s);
    // Headers and body leave in separate writes: without TCP_NODELAY, Nagle's algorithm and
    // the client's delayed ACK add ~40 ms to many responses.
    http_.set_tcp_nodelay(true);
    http_.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request&, httplib::Response& res) {
            if (!res.body.empty())
                return httplib::Server::HandlerResponse::Unhandled;  // a handler's JSON error
            send_error(res, transport_error(res.status, options_));
            return httplib::Server::HandlerResponse::Handled;
        }));
    auto streams = std::make_shared<EventStreamSlots>();
    streams->limit = http_limits::event_streams(threads);
    http_.set_pre_routing_handler(
        [this, streams](const httplib::Request& req, httplib::Response& res) {
            // The request is the server's own mutable object (cpp-httplib hands it on as
            // const): its multipart body is read raw and parsed by kiln (server/multipart.h).
            keep_multipart_body_raw(const_cast<httplib::Request&>(req));
            if (req.method != "GET" || req.path != "/v1/events")
                return httplib::Server::HandlerResponse::Unhandled;
            {
                std::lock_guard lock(streams->mutex);
                if (streams->open.size() < streams->limit) {
                    streams->open.insert(&req);
                    return httplib::Server::HandlerResponse::Unhandled;
                }
            }
            send_error(res, HttpError{503, "too_many_streams",
                                      "all " + std::to_string(streams->limit) +
                                          " event streams are in use; poll GET "
                                          "/v1/jobs?updated_since= instead, or retry later",
                                      5});
            context_.http.record("GET", "/v1/events", 503);
            return httplib::Server::HandlerResponse::Handled;
        });
    // Called once a response is written, a stream's when it ends (client gone, or stop).
    http_.set_logger([streams](const httplib::Request& req, const httplib::Response&) {
        std::lock_guard lock(streams->mutex);
        streams->open.erase(&req);
    });
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
    // The listening socket, seen as httplib creates it (the last one tried is the one bound).
    auto listen_socket = std::make_shared<socket_t>(INVALID_SOCKET);
    http_.set_socket_options([listen_socket](socket_t sock) {
        httplib::default_socket_options(sock);
        *listen_socket = sock;
    });
    int port = options_.port;
    if (port == 0) {
        port = http_.bind_to_any_port(options_.host);
    } else if (!http_.bind_to_port(options_.host, port)) {
        port = -1;
    }
    if (port < 0) {
        throw core::Error(core::ErrorCode::IO, "cannot listen on " + options_.host + ":" +
                                                   std::to_string(options_.port));
    }
    int listening = 0;
    socklen_t length = sizeof listening;
    if (*listen_socket == INVALID_SOCKET ||
        getsockopt(*listen_socket, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 ||
        !listening || ::listen(*listen_socket, listen_backlog) != 0) {
        spdlog::warn("could not raise the listen backlog above cpp-httplib's 5");
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
