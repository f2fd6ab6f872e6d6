#include "app/service.h"

#include <spdlog/spdlog.h>

#include "app/engine_setup.h"
#include "scheduler/local_result_store.h"
#include "scheduler/sqlite_job_store.h"
#include "server/api_server.h"

namespace kiln::app {

Service::Service(ServiceOptions options, scheduler::Scheduler::Observer observer)
    : options_(std::move(options)) {
    std::filesystem::create_directories(options_.data_dir);
    jobs_ = std::make_unique<scheduler::SqliteJobStore>(options_.data_dir / "kiln.db");
    results_ = std::make_unique<scheduler::LocalResultStore>(options_.data_dir / "results");
    registry_ = std::make_unique<weights::ModelRegistry>(options_.models_dir);
    backend_ = start_backend(options_.backend);
    auto on_event = [this, observer = std::move(observer)](const scheduler::SchedulerEvent& e) {
        if (observer)
            observer(e);
        changes_.notify();
    };
    scheduler_ = std::make_unique<scheduler::Scheduler>(*jobs_, *results_, *registry_, *backend_,
                                                        options_.scheduler, on_event);
    options_.server.scheduler = options_.scheduler;  // reported by GET /v1/limits
    http_ = std::make_unique<server::ApiServer>(*scheduler_, *jobs_, *results_, *registry_,
                                                changes_, options_.server);
}

Service::~Service() {
    stop();
}

int Service::start() {
    scheduler_->start();
    const int port = http_->start();
    http_->set_ready(true);
    sweeper_ = std::thread([this] { sweep_loop(); });
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
        } catch (const std::exception& e) {
            spdlog::warn("retention sweep: {}", e.what());  // try again next time
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
    scheduler_->drain(grace);  // new submissions get 503 while running jobs finish
    http_->stop();
}

}  // namespace kiln::app
