// A kiln service on a temporary data directory and a free port, with the tiny committed
// models, plus small HTTP helpers. Each test builds its own, so tests run in parallel.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
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
    void record(const scheduler::SchedulerEvent& event, int node = 0);
    std::vector<scheduler::SchedulerEvent> events() const;
    // Job ids in the order the queue handed them out (its operation numbers: across nodes,
    // the order of notifications may differ).
    std::vector<std::string> started() const;
    // The node that started the job last; -1 when none did.
    int node_that_started(const std::string& id) const;
    // The next job reporting progress with tiles left waits in its worker until release().
    void hold_next_progress();
    // Blocks until a worker is held; returns its job id.
    std::string wait_held();
    void release();

  private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<scheduler::SchedulerEvent> events_;
    std::map<std::string, int> started_on_;  // job id -> node
    bool hold_ = false;
    bool released_ = false;
    std::string held_;
};

image::Image test_image(int width, int height, int seed);
// What a request got; status 0 when it got no answer.
struct Answer {
    int status = 0;
    std::string body;
};
Answer answer(const httplib::Result& res);
// Runs body(0..n-1) on n threads released together, so that their requests overlap.
void run_concurrently(int n, const std::function<void(int)>& body);
// The API's error answer: this status, a JSON body with this code and a non-empty message.
void expect_error(const httplib::Result& res, int status, const std::string& code);
std::string png_bytes(const image::Image& image);
std::string base64(const std::string& bytes);

class RedisServer;

// How many nodes a Harness runs: KILN_TEST_NODES (default 1). Above 1, the harness starts a
// redis-server of its own and that many services on it (`kiln serve --store redis://...`: one
// Redis store and queue, one results folder, a node id each), and client() and next_port()
// hand out the nodes in turn, so that the same tests check kiln's promises across nodes
// (tests/server/CMakeLists.txt registers them a second time as three_nodes.*).
int harness_nodes();

struct Harness {
    explicit Harness(scheduler::SchedulerOptions options = default_scheduler(),
                     server::ServerOptions server = {},
                     const std::filesystem::path& data_dir = {});
    ~Harness();

    static scheduler::SchedulerOptions default_scheduler();
    void start();
    void stop();

    // On every node.
    void resume_workers();
    void drain(std::chrono::milliseconds grace);

    // The next node's port (one node: always `port`).
    int next_port() const;
    // A client of the next node.
    httplib::Client client() const;
    // A client of a node other than the one that started job `id` (one node: that node), so
    // that a request about a running job comes from elsewhere.
    httplib::Client client_away_from(const std::string& id) const;
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
    std::unique_ptr<RedisServer> redis;     // with more than one node
    std::unique_ptr<app::Service> service;  // the first node
    std::vector<std::unique_ptr<app::Service>> more_nodes;
    int port = 0;            // the first node's
    std::vector<int> ports;  // every node's, the first first

  private:
    httplib::Client client_of(int node_port) const;
    mutable std::atomic<size_t> next_node_{0};
};

// What the engine computes for `input` with model srvgg_x4 (whole image, default options).
image::Image expected_upscale(const std::filesystem::path& models_dir, const image::Image& input);

}  // namespace kiln::test
