// A kiln service on a temporary data directory and a free port, with the tiny committed
// models, plus small HTTP helpers. Each test builds its own, so tests run in parallel.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/service.h"
#include "image/image.h"
#include "tests/scheduler/temp_dir.h"

namespace kiln::test {

// Records scheduler events and can hold a worker at a job's first progress report.
class EventLog {
  public:
    void record(const scheduler::SchedulerEvent& event);
    std::vector<scheduler::SchedulerEvent> events() const;
    std::vector<std::string> started() const;
    // The next job reporting progress with tiles left waits in its worker until release().
    void hold_next_progress();
    // Blocks until a worker is held; returns its job id.
    std::string wait_held();
    void release();

  private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<scheduler::SchedulerEvent> events_;
    bool hold_ = false;
    bool released_ = false;
    std::string held_;
};

image::Image test_image(int width, int height, int seed);
// The API's error answer: this status, a JSON body with this code and a non-empty message.
void expect_error(const httplib::Result& res, int status, const std::string& code);
std::string png_bytes(const image::Image& image);
std::string base64(const std::string& bytes);

struct Harness {
    explicit Harness(scheduler::SchedulerOptions options = default_scheduler(),
                     server::ServerOptions server = {},
                     const std::filesystem::path& data_dir = {});
    ~Harness();

    static scheduler::SchedulerOptions default_scheduler();
    void start();
    void stop();

    httplib::Client client() const;
    std::string new_session() const;  // a token
    httplib::Headers auth(const std::string& token) const;
    httplib::Result submit(const std::string& token,
                           const std::string& png,
                           const nlohmann::json& extra = {},
                           const std::string& idempotency_key = {}) const;
    nlohmann::json get_job(const std::string& token, const std::string& id) const;
    // Polls until the job is final; fails the test (and returns the last body) on timeout.
    nlohmann::json wait_final(const std::string& token, const std::string& id) const;

    TempDir dir;
    std::filesystem::path data_dir;
    scheduler::SchedulerOptions scheduler_options;
    server::ServerOptions server_options;
    std::shared_ptr<EventLog> log = std::make_shared<EventLog>();
    std::unique_ptr<app::Service> service;
    int port = 0;
};

// What the engine computes for `input` with model srvgg_x4 (whole image, default options).
image::Image expected_upscale(const std::filesystem::path& models_dir, const image::Image& input);

}  // namespace kiln::test
