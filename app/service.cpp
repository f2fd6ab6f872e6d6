#include "app/service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>

#include "app/engine_setup.h"
#include "core/error.h"
#include "scheduler/local_result_store.h"
#include "scheduler/redis/redis_job_queue.h"
#include "scheduler/redis/redis_job_store.h"
#include "scheduler/sqlite_job_store.h"
#include "server/api_server.h"

namespace kiln::app {

namespace {

std::string default_node_id() {
    char host[HOST_NAME_MAX + 1] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        std::snprintf(host, sizeof host, "%s", "node");
    return std::string(host) + "-" + std::to_string(getpid());
}

}  // namespace

Service::Service(ServiceOptions options, scheduler::Scheduler::Observer observer)
    : options_(std::move(options)) {
    std::unique_ptr<scheduler::JobQueue> queue;  // null: the scheduler's in-memory queue
    if (options_.store == "sqlite") {
        std::filesystem::create_directories(options_.data_dir);
        jobs_ = std::make_unique<scheduler::SqliteJobStore>(options_.data_dir / "kiln.db");
        results_ = std::make_unique<scheduler::LocalResultStore>(options_.data_dir / "results");
    } else {
        if (!options_.store.starts_with("redis://")) {
            throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                              "--store: '" + options_.store +
                                  "' is neither sqlite nor a redis://HOST[:PORT][/DB] URL");
        }
        const scheduler::RedisAddress address = scheduler::parse_redis_url(options_.store);
        if (options_.results_dir.empty()) {
            throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                              "--store " + options_.store +
                                  " needs --results DIR: the results folder every node mounts");
        }
        if (options_.node_id.empty())
            options_.node_id = default_node_id();
        const std::string prefix = std::string("kiln");
        try {
            jobs_ = std::make_unique<scheduler::RedisJobStore>(address, prefix);
            queue = std::make_unique<scheduler::RedisJobQueue>(address, prefix, options_.node_id,
                                                               options_.claim_timeout);
        } catch (const core::Error& e) {
            throw core::Error(e.code(), "cannot use the store " + options_.store + ": " + e.what());
        }
        std::filesystem::create_directories(options_.results_dir);
        results_ = std::make_unique<scheduler::LocalResultStore>(options_.results_dir);
        options_.scheduler.shared_queue = true;
        options_.scheduler.claim_renew =
            std::max(std::chrono::milliseconds(1), options_.claim_timeout / 3);
    }
    registry_ = std::make_unique<weights::ModelRegistry>(options_.models_dir);
    backend_ = start_backend(options_.backend);
    auto on_event = [this, observer = std::move(observer)](const scheduler::SchedulerEvent& e) {
        if (observer)
            observer(e);
        changes_.notify();
    };
    scheduler_ = std::make_unique<scheduler::Scheduler>(
        *jobs_, *results_, *registry_, *backend_, options_.scheduler, on_event, std::move(queue));
    options_.server.scheduler = options_.scheduler;  // reported by GET /v1/limits
    http_ = std::make_unique<server::ApiServer>(*scheduler_, *jobs_, *results_, *registry_,
                                                changes_, options_.server);
}

Service::~Service() {
    stop();
}

int Service::start() {
    scheduler_->start();
    // The other nodes' changes are polled from before the first stream can open (-1: unknown,
    // the first poll wakes the streams once).
    int64_t baseline = -1;
    if (options_.scheduler.shared_queue) {
        try {
            baseline = jobs_->last_update_seq();
        } catch (const std::exception& e) {
            spdlog::warn("change poll: {}", e.what());
        }
    }
    const int port = http_->start();
    http_->set_ready(true);
    sweeper_ = std::thread([this] { sweep_loop(); });
    if (options_.scheduler.shared_queue)
        change_poller_ = std::thread([this, baseline] { change_poll_loop(baseline); });
    return port;
}

void Service::stop() {
    {
        std::lock_guard lock(sweep_mutex_);
        sweep_stop_ = true;
    }
    sweep_wake_.notify_all();
    if (sweeper_.joinable())
        sweeper_.join();
    if (change_poller_.joinable())
        change_poller_.join();
    http_->stop();
    scheduler_->stop();
}

void Service::sweep_loop() {
    std::unique_lock lock(sweep_mutex_);
    while (!sweep_wake_.wait_for(lock, options_.sweep_interval, [&] { return sweep_stop_; })) {
        lock.unlock();
        try {
            const int64_t now = scheduler::now_ms();
            for (const std::string& session : jobs_->expired_sessions(now))
                scheduler_->remove_session(session);
            for (const auto& [session, job] :
                 jobs_->finished_before(now - options_.output_ttl.count()))
                scheduler_->remove(session, job);
            scheduler_->repair_queue(options_.sweep_interval);
        } catch (const std::exception& e) {
            spdlog::warn("retention sweep: {}", e.what());  // try again next time
        }
        lock.lock();
    }
}

void Service::change_poll_loop(int64_t seen) {
    // This poll reads the store 4 times a second whatever the traffic, so it is the node's
    // one place to say (once) that the store went away and when it came back; requests
    // meanwhile answer 503 store_unavailable and workers retry on their own.
    bool reachable = true;
    std::unique_lock lock(sweep_mutex_);
    while (!sweep_wake_.wait_for(lock, options_.change_poll, [&] { return sweep_stop_; })) {
        lock.unlock();
        try {
            const int64_t last = jobs_->last_update_seq();
            if (!reachable)
                spdlog::info("the store {} is reachable again", options_.store);
            reachable = true;
            if (last != seen)
                changes_.notify();
            seen = last;
        } catch (const std::exception& e) {
            if (reachable)
                spdlog::warn(
                    "the store is out of reach ({}); requests that need it answer 503 "
                    "until it is back",
                    e.what());
            reachable = false;
        }
        lock.lock();
    }
}

void Service::drain(std::chrono::milliseconds grace) {
    {
        std::lock_guard lock(sweep_mutex_);
        sweep_stop_ = true;
    }
    sweep_wake_.notify_all();
    if (sweeper_.joinable())
        sweeper_.join();
    if (change_poller_.joinable())
        change_poller_.join();
    scheduler_->drain(grace);  // new submissions get 503 while running jobs finish
    http_->stop();
}

}  // namespace kiln::app
