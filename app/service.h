// The composition root: one kiln service on a data directory. The SQLite job store
// (<data>/kiln.db), the result store (<data>/results/<session>/<job>/), the model registry,
// the backend (CPU, or CUDA), the scheduler and the HTTP server, started and stopped in order.
// With a Redis store, the jobs, sessions and queue live in Redis and the results in a folder
// every node mounts, so several services share them (docs/scale-out.md).
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
class JobStore;
class LocalResultStore;
}  // namespace kiln::scheduler

namespace kiln::server {
class ApiServer;
}  // namespace kiln::server

namespace kiln::app {

struct ServiceOptions {
    std::filesystem::path models_dir;
    std::filesystem::path data_dir;
    // "sqlite": the embedded store in data_dir. Else redis://HOST[:PORT][/DB]: jobs, sessions
    // and the queue shared with other nodes under the key prefix "kiln", results in
    // results_dir (required then: the shared folder every node mounts).
    std::string store = "sqlite";
    std::filesystem::path results_dir;
    std::string node_id;  // names this node's claims; empty: hostname-pid
    std::chrono::milliseconds claim_timeout{std::chrono::seconds(60)};  // renewed every third
    scheduler::SchedulerOptions scheduler;
    server::ServerOptions server;
    std::chrono::milliseconds output_ttl = std::chrono::hours(24 * 7);  // finished jobs kept
    std::chrono::milliseconds sweep_interval = std::chrono::minutes(1);
    // With a shared store: how often this node looks for other nodes' changes (the store's
    // last update_seq) to wake its event streams.
    std::chrono::milliseconds change_poll = std::chrono::milliseconds(250);
    // The backend jobs run on (start_backend): on CUDA each worker slot is one stream with its
    // own pool. The CPU unless asked (`kiln serve --device`).
    BackendOptions backend{.device = "cpu"};
};

class Service {
  public:
    // Throws core::Error: INVALID_ARGUMENT for a bad store URL or a missing results_dir,
    // UNAVAILABLE when Redis cannot be reached.
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
    // With a shared store: wakes the event streams when another node changed a job (this
    // node's own changes wake them at once through the scheduler's events). `seen`: the
    // store's last update_seq when the server started.
    void change_poll_loop(int64_t seen);

    ServiceOptions options_;
    std::unique_ptr<scheduler::JobStore> jobs_;
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
    std::thread change_poller_;
};

}  // namespace kiln::app
