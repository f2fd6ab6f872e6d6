// The composition root: one kiln service on a data directory. The SQLite job store
// (<data>/kiln.db), the result store (<data>/results/<session>/<job>/), the model registry,
// the backend (CPU, or CUDA), the scheduler and the HTTP server, started and stopped in order.
// `kiln serve` and the server tests both use it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "app/commands.h"
#include "engine/backend.h"
#include "scheduler/scheduler.h"
#include "server/api_context.h"
#include "server/change_notifier.h"

namespace kiln::scheduler {
class SqliteJobStore;
class LocalResultStore;
}  // namespace kiln::scheduler

namespace kiln::server {
class ApiServer;
}  // namespace kiln::server

namespace kiln::app {

struct ServiceOptions {
    std::filesystem::path models_dir;
    std::filesystem::path data_dir;
    scheduler::SchedulerOptions scheduler;
    server::ServerOptions server;
    std::chrono::milliseconds output_ttl = std::chrono::hours(24 * 7);  // finished jobs kept
    std::chrono::milliseconds sweep_interval = std::chrono::minutes(1);
    // The backend jobs run on (start_backend): on CUDA each worker slot is one stream with its
    // own pool. The CPU unless asked (`kiln serve --device`).
    BackendOptions backend{.device = "cpu"};
};

class Service {
  public:
    explicit Service(ServiceOptions options, scheduler::Scheduler::Observer observer = {});
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // Recovers unfinished jobs, starts the workers and the HTTP server; returns the port.
    int start();
    // Stops HTTP, then the workers (running jobs are re-run at the next start).
    void stop();
    // SIGTERM: refuse new jobs, let running ones finish within `grace`, then stop.
    void drain(std::chrono::milliseconds grace);

    scheduler::Scheduler& scheduler() { return *scheduler_; }
    const ServiceOptions& options() const { return options_; }

  private:
    // Removes expired sessions and finished jobs older than output_ttl, every sweep_interval.
    void sweep_loop();

    ServiceOptions options_;
    std::unique_ptr<scheduler::SqliteJobStore> jobs_;
    std::unique_ptr<scheduler::LocalResultStore> results_;
    std::unique_ptr<weights::ModelRegistry> registry_;
    std::unique_ptr<engine::Backend> backend_;
    server::ChangeNotifier changes_;
    std::unique_ptr<scheduler::Scheduler> scheduler_;
    std::unique_ptr<server::ApiServer> http_;
    std::mutex sweep_mutex_;
    std::condition_variable sweep_wake_;
    bool sweep_stop_ = false;
    std::thread sweeper_;
};

}  // namespace kiln::app
