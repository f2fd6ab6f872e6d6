#include "server/service.h"

#include <spdlog/spdlog.h>

#include "engine/core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "scheduler/local_result_store.h"
#include "scheduler/sqlite_job_store.h"
#include "server/api_server.h"

namespace kiln::server {

Service::Service(ServiceOptions options, scheduler::Scheduler::Observer observer)
    : options_(std::move(options)) {
    std::filesystem::create_directories(options_.data_dir);
    jobs_ = std::make_unique<scheduler::SqliteJobStore>(options_.data_dir / "kiln.db");
    results_ = std::make_unique<scheduler::LocalResultStore>(options_.data_dir / "results");
    registry_ = std::make_unique<weights::ModelRegistry>(options_.models_dir);
    if (options_.use_cuda) {
        try {
            backend_ = engine::cuda::make_cuda_backend();
            backend_->create_context(engine::ContextOptions{1});  // fails early if it cannot run
            spdlog::info("jobs run on the CUDA backend, one stream per worker");
        } catch (const Error& e) {
            if (options_.cuda_required)
                throw;
            spdlog::info("jobs run on the CPU backend: the CUDA backend failed to start ({})",
                         e.what());
            backend_.reset();
        }
    }
    if (!backend_)
        backend_ = engine::cpu::make_cpu_backend();
    auto on_event = [this, observer = std::move(observer)](const scheduler::SchedulerEvent& e) {
        if (observer)
            observer(e);
        changes_.notify();
    };
    scheduler_ = std::make_unique<scheduler::Scheduler>(*jobs_, *results_, *registry_, *backend_,
                                                        options_.scheduler, on_event);
    options_.server.scheduler = options_.scheduler;  // reported by GET /v1/limits
    http_ = std::make_unique<ApiServer>(*scheduler_, *jobs_, *results_, *registry_, changes_,
                                        options_.server);
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

}  // namespace kiln::server
