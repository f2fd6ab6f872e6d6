#include "tests/server/server_harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "engine/cpu/cpu_backend.h"
#include "engine/pipeline/upscale_image.h"
#include "tests/redis/redis_server.h"
#include "weights/registry.h"

namespace kiln::test {

void EventLog::record(const scheduler::SchedulerEvent& event, int node) {
    std::unique_lock lock(mutex_);
    events_.push_back(event);
    if (event.kind == scheduler::SchedulerEventKind::STARTED)
        started_on_[event.job_id] = node;
    if (event.kind == scheduler::SchedulerEventKind::PROGRESS && hold_) {
        hold_ = false;
        held_ = event.job_id;
        cv_.notify_all();
        cv_.wait(lock, [&] { return released_; });
    }
}

std::vector<scheduler::SchedulerEvent> EventLog::events() const {
    std::lock_guard lock(mutex_);
    return events_;
}

std::vector<std::string> EventLog::started() const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<uint64_t, std::string>> pops;
    for (const auto& e : events_) {
        if (e.kind == scheduler::SchedulerEventKind::STARTED)
            pops.emplace_back(e.queue_op, e.job_id);
    }
    std::sort(pops.begin(), pops.end());
    std::vector<std::string> ids;
    for (auto& [op, id] : pops)
        ids.push_back(std::move(id));
    return ids;
}

int EventLog::node_that_started(const std::string& id) const {
    std::lock_guard lock(mutex_);
    const auto it = started_on_.find(id);
    return it == started_on_.end() ? -1 : it->second;
}

void EventLog::hold_next_progress() {
    std::lock_guard lock(mutex_);
    hold_ = true;
    released_ = false;
    held_.clear();
}

std::string EventLog::wait_held() {
    std::unique_lock lock(mutex_);
    const bool held = cv_.wait_for(lock, std::chrono::seconds(120), [&] { return !held_.empty(); });
    EXPECT_TRUE(held) << "no job reached its first tile";
    return held_;
}

void EventLog::release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    cv_.notify_all();
}

Answer answer(const httplib::Result& res) {
    return res ? Answer{res->status, res->body} : Answer{};
}

void run_concurrently(int n, const std::function<void(int)>& body) {
    std::mutex mutex;
    std::condition_variable go;
    bool released = false;
    std::vector<std::thread> threads;
    for (int k = 0; k < n; ++k) {
        threads.emplace_back([&, k] {
            {
                std::unique_lock lock(mutex);
                go.wait(lock, [&] { return released; });
            }
            body(k);
        });
    }
    {
        std::lock_guard lock(mutex);
        released = true;
    }
    go.notify_all();
    for (auto& t : threads)
        t.join();
}

image::Image test_image(int width, int height, int seed) {
    image::Image img;
    img.width = width;
    img.height = height;
    img.channels = 3;
    img.samples.resize(img.sample_count());
    for (size_t i = 0; i < img.samples.size(); ++i) {
        img.samples[i] =
            static_cast<uint16_t>((i * 13 + static_cast<size_t>(seed) * 97 + (i / 7) * seed) % 256);
    }
    return img;
}

std::string png_bytes(const image::Image& image) {
    const auto bytes = image::encode_png(image);
    return std::string(bytes.begin(), bytes.end());
}

std::string base64(const std::string& bytes) {
    static constexpr char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) |
                           (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                           static_cast<uint8_t>(bytes[i + 2]);
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += table[v & 63];
    }
    if (i < bytes.size()) {
        uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
        if (i + 1 < bytes.size())
            v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

scheduler::SchedulerOptions Harness::default_scheduler() {
    scheduler::SchedulerOptions options;
    options.workers = 1;
    options.threads_per_worker = 1;
    return options;
}

int harness_nodes() {
    const char* env = std::getenv("KILN_TEST_NODES");
    return env ? std::max(1, std::atoi(env)) : 1;
}

Harness::Harness(scheduler::SchedulerOptions options,
                 server::ServerOptions server,
                 const std::filesystem::path& data)
    : data_dir(data.empty() ? dir.path() / "data" : data),
      scheduler_options(options),
      server_options(std::move(server)) {
    std::filesystem::create_directories(dir.path() / "models");
    for (const char* name : {"srvgg_x4.pth", "rrdb_x4_basicsr.pth"}) {
        std::filesystem::copy_file(std::filesystem::path(KILN_TEST_DATA) / "weights" / name,
                                   dir.path() / "models" / name);
    }
    server_options.host = "127.0.0.1";
    server_options.port = 0;
    if (harness_nodes() > 1) {
        if (!RedisServer::available())
            throw std::runtime_error(
                "KILN_TEST_NODES > 1 needs redis-server on PATH; scripts/install-deps.sh "
                "installs it");
        redis = std::make_unique<RedisServer>();
    }
    start();
}

Harness::~Harness() {
    stop();
}

void Harness::start() {
    const int nodes = harness_nodes();
    ports.clear();
    for (int node = 0; node < nodes; ++node) {
        app::ServiceOptions options;
        options.models_dir = dir.path() / "models";
        options.data_dir = nodes > 1 ? data_dir / ("node" + std::to_string(node)) : data_dir;
        options.scheduler = scheduler_options;
        options.server = server_options;
        if (nodes > 1) {
            const scheduler::RedisAddress address = redis->address();
            options.store = "redis://" + address.host + ":" + std::to_string(address.port);
            options.results_dir = data_dir / "results";
            options.node_id = "node" + std::to_string(node);
            // Nothing dies in these tests; a short timeout only makes renewals frequent.
            options.claim_timeout = std::chrono::seconds(10);
        }
        auto events = log;
        auto node_service = std::make_unique<app::Service>(
            options,
            [events, node](const scheduler::SchedulerEvent& e) { events->record(e, node); });
        ports.push_back(node_service->start());
        if (node == 0)
            service = std::move(node_service);
        else
            more_nodes.push_back(std::move(node_service));
    }
    port = ports.front();
}

void Harness::stop() {
    log->release();
    for (auto& node : more_nodes)
        node->stop();
    more_nodes.clear();
    if (service) {
        service->stop();
        service.reset();
    }
}

void Harness::resume_workers() {
    service->scheduler().resume_workers();
    for (auto& node : more_nodes)
        node->scheduler().resume_workers();
}

void Harness::drain(std::chrono::milliseconds grace) {
    std::vector<std::thread> drains;
    for (auto& node : more_nodes)
        drains.emplace_back([&node, grace] { node->scheduler().drain(grace); });
    service->scheduler().drain(grace);
    for (auto& t : drains)
        t.join();
}

int Harness::next_port() const {
    return ports[next_node_++ % ports.size()];
}

httplib::Client Harness::client_of(int node_port) const {
    httplib::Client cli("127.0.0.1", node_port);
    cli.set_read_timeout(120, 0);
    cli.set_write_timeout(120, 0);
    return cli;
}

httplib::Client Harness::client() const {
    return client_of(next_port());
}

httplib::Client Harness::client_away_from(const std::string& id) const {
    const int node = log->node_that_started(id);
    EXPECT_GE(node, 0) << "no node started job " << id;
    if (ports.size() == 1 || node < 0)
        return client_of(ports.front());
    return client_of(ports[(static_cast<size_t>(node) + 1) % ports.size()]);
}

httplib::Headers Harness::auth(const std::string& token) const {
    return {{"Authorization", "Bearer " + token}};
}

void expect_error(const httplib::Result& res, int status, const std::string& code) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << res->body;
    const nlohmann::json body = nlohmann::json::parse(res->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << res->body;
    EXPECT_EQ(body["error"]["code"], code) << res->body;
    ASSERT_TRUE(body["error"]["message"].is_string()) << res->body;
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty()) << res->body;
}

std::string Harness::new_session() const {
    auto res = client().Post("/v1/sessions", auth(server_options.api_key), "", "application/json");
    EXPECT_TRUE(res);
    if (!res)
        return {};
    EXPECT_EQ(res->status, 201) << res->body;
    return nlohmann::json::parse(res->body).at("token").get<std::string>();
}

httplib::Result Harness::submit(const std::string& token,
                                const std::string& png,
                                const nlohmann::json& extra,
                                const std::string& idempotency_key) const {
    nlohmann::json body = {{"model", "srvgg_x4"}, {"input", {{"image", base64(png)}}}};
    if (extra.is_object()) {
        for (const auto& [k, v] : extra.items())
            body[k] = v;
    }
    httplib::Headers headers = auth(token);
    if (!idempotency_key.empty())
        headers.emplace("Idempotency-Key", idempotency_key);
    return client().Post("/v1/jobs", headers, body.dump(), "application/json");
}

nlohmann::json Harness::get_job(const std::string& token, const std::string& id) const {
    auto res = client().Get("/v1/jobs/" + id, auth(token));
    EXPECT_TRUE(res);
    if (!res || res->status != 200)
        return nullptr;
    return nlohmann::json::parse(res->body);
}

nlohmann::json Harness::wait_final(const std::string& token, const std::string& id) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    nlohmann::json job;
    while (std::chrono::steady_clock::now() < deadline) {
        job = get_job(token, id);
        if (job.is_null())
            return job;
        const std::string status = job.at("status");
        if (status == "succeeded" || status == "failed" || status == "cancelled")
            return job;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "job " << id << " did not finish: " << job.dump();
    return job;
}

image::Image expected_upscale(const std::filesystem::path& models_dir, const image::Image& input) {
    weights::ModelRegistry registry(models_dir);
    auto model = engine::Model::create(registry.load("srvgg_x4"));
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context(engine::ContextOptions{1});
    engine::Upscaler upscaler(*model, *backend, *context);
    return engine::upscale_image(upscaler, input, engine::UpscaleOptions{});
}

}  // namespace kiln::test
