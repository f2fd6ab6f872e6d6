// The HTTP front: cpp-httplib with a bounded thread pool, JSON errors for everything
// (unknown routes, oversized bodies, handler exceptions), and the route groups.
#pragma once

#include <httplib.h>

#include <memory>
#include <thread>

#include "server/api_context.h"

namespace kiln::server {

class ApiServer {
  public:
    ApiServer(scheduler::Scheduler& scheduler,
              scheduler::JobStore& jobs,
              scheduler::ResultStore& results,
              weights::ModelRegistry& registry,
              ChangeNotifier& changes,
              ServerOptions options);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // Binds (port 0: a free port) and serves on a thread; returns the port. Throws core::Error(IO).
    int start();
    void stop();
    void set_ready(bool ready) { context_.ready = ready; }

  private:
    ServerOptions options_;
    ApiContext context_;
    httplib::Server http_;
    std::thread thread_;
};

}  // namespace kiln::server
