// kiln serve: the job server (HTTP API, fair scheduler, SQLite + local result store, or a
// Redis store and queue shared with other nodes + a shared results folder).
// SIGTERM or SIGINT drains: new jobs get 503, running jobs finish within --drain-grace, the
// queue is kept for the next start, and the process exits 0.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>

#include "app/commands.h"
#include "app/engine_setup.h"
#include "app/service.h"
#include "engine/device.h"

namespace kiln::app {

namespace {

struct ServeArgs {
    std::string host = "127.0.0.1";
    int port = 8080;
    std::string models_dir;
    std::string data_dir = "data";
    std::string store = "sqlite";
    std::string results_dir;
    std::string node_id;
    int claim_timeout_s = 60;
    std::string device = "auto";
    int workers = 1;
    int threads = 0;
    std::string api_key;
    size_t max_queued = 1000;
    size_t max_queued_per_session = 100;
    double max_stored_per_session_mib = 2048;  // fractions allowed (tests use small ones)
    size_t max_streams_per_session = 4;
    size_t sessions_per_client_hour = 500;
    bool trust_forwarded_for = false;
    size_t max_prompt_bytes = 1000;
    size_t memory_budget_mib = 2048;
    size_t model_cache_mib = 4096;
    size_t max_body_mib = 64;
    // 4 Mpx in: a x4 model's stitched output (64 Mpx, float) stays under 1 GiB.
    int64_t max_pixels = 4LL << 20;
    int max_side = 32768;
    int http_threads = 64;
    int64_t session_ttl_hours = 24 * 7;
    int drain_grace_s = 30;
    int64_t output_ttl_hours = 24 * 7;
    int64_t job_timeout_s = 0;
    std::string web_dir = KILN_WEB_DIR;
};

int run_serve(const ServeArgs& args) {
    ServiceOptions options;
    options.backend.device = args.device;
    options.models_dir = resolve_models_dir(args.models_dir);
    options.data_dir = args.data_dir;
    options.store = args.store;
    options.results_dir = args.results_dir;
    options.node_id = args.node_id;
    options.claim_timeout = std::chrono::seconds(args.claim_timeout_s);
    options.scheduler.workers = args.workers;
    options.scheduler.threads_per_worker = args.threads;
    options.scheduler.max_queued = args.max_queued;
    options.scheduler.max_queued_per_session = args.max_queued_per_session;
    options.scheduler.max_stored_bytes_per_session =
        static_cast<uint64_t>(args.max_stored_per_session_mib * 1024 * 1024);
    options.server.max_event_streams_per_session = args.max_streams_per_session;
    options.server.max_sessions_per_client_hour = args.sessions_per_client_hour;
    options.server.trust_forwarded_for = args.trust_forwarded_for;
    options.server.max_prompt_bytes = args.max_prompt_bytes;
    options.scheduler.memory_budget = args.memory_budget_mib << 20;
    options.scheduler.model_cache_bytes = args.model_cache_mib << 20;
    options.scheduler.decode_limits.max_pixels = args.max_pixels;
    options.scheduler.decode_limits.max_side = args.max_side;
    options.server.host = args.host;
    options.server.port = args.port;
    options.server.api_key = args.api_key;
    options.server.max_body_bytes = args.max_body_mib << 20;
    options.server.http_threads = args.http_threads;
    options.server.web_dir = args.web_dir;
    options.server.session_ttl_s = args.session_ttl_hours * 3600;
    options.output_ttl = std::chrono::hours(args.output_ttl_hours);
    options.scheduler.job_timeout = std::chrono::seconds(args.job_timeout_s);

    // Every thread started below inherits this mask; only sigwait sees the signals.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    Service service(options);
    const int port = service.start();
    spdlog::info(
        "kiln serve on http://{}:{}: models {}, {}, {} worker(s) x {} thread(s), queue "
        "limits {} total / {} per session, memory budget {} MiB per job, model cache {} MiB, "
        "body limit {} MiB, images up to {} pixels / {} px a side, {} HTTP threads, sessions "
        "{} h, outputs kept {} h, job timeout {} s (0: none), api key {}",
        args.host, port, options.models_dir.string(),
        args.store == "sqlite"
            ? "data " + options.data_dir.string()
            : "store " + args.store + " as node " + service.options().node_id + ", results " +
                  args.results_dir + ", claims " + std::to_string(args.claim_timeout_s) + " s",
        service.scheduler().workers(), service.scheduler().threads_per_worker(), args.max_queued,
        args.max_queued_per_session, args.memory_budget_mib, args.model_cache_mib,
        args.max_body_mib, args.max_pixels, args.max_side, args.http_threads,
        args.session_ttl_hours, args.output_ttl_hours, args.job_timeout_s,
        args.api_key.empty() ? "off" : "on");

    int received = 0;
    sigwait(&signals, &received);
    spdlog::info("signal {}: draining (grace {} s); queued jobs are kept for the next start",
                 received, args.drain_grace_s);
    service.drain(std::chrono::seconds(args.drain_grace_s));
    spdlog::info("stopped");
    return 0;
}

}  // namespace

Runner register_serve(CLI::App& app) {
    auto args = std::make_shared<ServeArgs>();
    CLI::App* cmd = app.add_subcommand("serve", "run the job server (HTTP API)");
    cmd->add_option("--host", args->host, "address to listen on");
    cmd->add_option("--port", args->port, "port (0: any free port)")->check(CLI::Range(0, 65535));
    cmd->add_option("--models,--models-dir", args->models_dir,
                    "folder of model files (default: $KILN_MODELS_DIR or ./models)");
    cmd->add_option("--data", args->data_dir, "data folder: kiln.db and results/");
    cmd->add_option("--store", args->store,
                    "sqlite (in --data) or redis://HOST[:PORT][/DB], shared by several nodes");
    cmd->add_option("--results", args->results_dir,
                    "with a Redis store: the results folder every node mounts (required)");
    cmd->add_option("--node-id", args->node_id,
                    "with a Redis store: this node's name in job claims (default hostname-pid)");
    cmd->add_option("--claim-timeout", args->claim_timeout_s,
                    "with a Redis store: seconds before a silent node's jobs go to another node")
        ->check(CLI::Range(1, 86400));
    cmd->add_option("--device", args->device, "auto, cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    cmd->add_option("--workers", args->workers, "jobs run at once")->check(CLI::Range(1, 256));
    cmd->add_option("--threads", args->threads, "CPU threads per worker (0: cores / workers)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--api-key", args->api_key, "required to create sessions when set");
    cmd->add_option("--max-queued", args->max_queued, "queued jobs, all sessions (429 above)");
    cmd->add_option("--max-queued-per-session", args->max_queued_per_session,
                    "queued jobs per session (429 above)");
    cmd->add_option("--max-stored-per-session", args->max_stored_per_session_mib,
                    "MiB of inputs and outputs a session may keep (507 above; 0: no limit)")
        ->check(CLI::Range(0.0, 1e9));
    cmd->add_option("--max-streams-per-session", args->max_streams_per_session,
                    "event streams a session may hold open (429 above)")
        ->check(CLI::Range(1, 1024));
    cmd->add_option("--sessions-per-client-hour", args->sessions_per_client_hour,
                    "sessions one client address may create per hour (429 above; 0: no limit)");
    cmd->add_flag("--trust-forwarded-for", args->trust_forwarded_for,
                  "the client address is the last X-Forwarded-For entry (behind a proxy)");
    cmd->add_option("--max-prompt", args->max_prompt_bytes, "bytes per prompt (400 above)");
    cmd->add_option("--memory-budget", args->memory_budget_mib, "MiB one job's plan may use");
    cmd->add_option("--model-cache", args->model_cache_mib, "MiB of loaded models kept");
    cmd->add_option("--max-body", args->max_body_mib, "MiB per request body (413 above)");
    cmd->add_option("--max-pixels", args->max_pixels, "pixels per input image (413 above)");
    cmd->add_option("--max-side", args->max_side, "pixels per input side (413 above)");
    cmd->add_option("--web", args->web_dir, "folder of the web UI served at / (empty: none)");
    cmd->add_option("--http-threads", args->http_threads, "HTTP worker threads")
        ->check(CLI::Range(1, 1024));
    cmd->add_option("--session-ttl", args->session_ttl_hours, "hours a session token is valid");
    cmd->add_option("--output-ttl", args->output_ttl_hours,
                    "hours finished jobs and their files are kept");
    cmd->add_option("--job-timeout", args->job_timeout_s,
                    "seconds a job may run before it fails with timeout (0: no limit)");
    cmd->add_option("--drain-grace", args->drain_grace_s,
                    "seconds running jobs may finish after SIGTERM");
    return [cmd, args]() { return cmd->parsed() ? run_serve(*args) : -1; };
}

}  // namespace kiln::app
