// Fairness, cancel, retry, idempotent resubmission, queue controls, draining and restart.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "tests/server/server_harness.h"

namespace kiln::test {
namespace {

using nlohmann::json;
using scheduler::SchedulerEventKind;

std::string submit_id(const Harness& h,
                      const std::string& token,
                      const std::string& png,
                      const json& extra = {}) {
    auto res = h.submit(token, png, extra);
    EXPECT_TRUE(res);
    EXPECT_EQ(res->status, 202) << res->body;
    return json::parse(res->body)["id"];
}

TEST(Lifecycle, LateSessionStartsAfterAtMostOneMoreJobPerWorker) {
    auto options = Harness::default_scheduler();
    options.start_paused = true;
    Harness h(options);
    const std::string a = h.new_session(), b = h.new_session();
    const std::string png = png_bytes(test_image(8, 8, 1));
    for (int i = 0; i < 30; ++i)
        submit_id(h, a, png);
    const std::string b_job = submit_id(h, b, png);
    h.resume_workers();
    h.wait_final(b, b_job);
    const auto started = h.log->started();
    const auto pos = std::find(started.begin(), started.end(), b_job) - started.begin();
    EXPECT_LE(pos, 1) << "B's job started after " << pos << " of A's";
}

TEST(Lifecycle, FairWhileRunning) {
    Harness h;  // one worker, running from the start
    const std::string a = h.new_session(), b = h.new_session();
    const std::string png = png_bytes(test_image(12, 12, 2));
    for (int i = 0; i < 30; ++i)
        submit_id(h, a, png);
    const std::string b_job = submit_id(h, b, png);
    h.wait_final(b, b_job);
    // Count A's jobs taken from the queue between B's push and B's pop, ordered by the queue's
    // own operation numbers (the order in which notifications arrive may differ).
    uint64_t b_pushed = 0, b_popped = 0;
    for (const auto& e : h.log->events()) {
        if (e.job_id == b_job && e.kind == SchedulerEventKind::QUEUED)
            b_pushed = e.queue_op;
        if (e.job_id == b_job && e.kind == SchedulerEventKind::STARTED)
            b_popped = e.queue_op;
    }
    ASSERT_GT(b_pushed, 0u);
    ASSERT_GT(b_popped, b_pushed);
    int a_starts = 0;
    for (const auto& e : h.log->events()) {
        if (e.kind == SchedulerEventKind::STARTED && e.job_id != b_job && e.queue_op > b_pushed &&
            e.queue_op < b_popped)
            ++a_starts;
    }
    EXPECT_LE(a_starts, 1);
}

TEST(Lifecycle, CancelQueuedThenRetry) {
    auto options = Harness::default_scheduler();
    options.start_paused = true;
    Harness h(options);
    const std::string token = h.new_session();
    const std::string id = submit_id(h, token, png_bytes(test_image(8, 8, 3)));
    auto cancel = h.client().Post("/v1/jobs/" + id + "/cancel", h.auth(token), "", "");
    ASSERT_EQ(cancel->status, 200) << cancel->body;
    EXPECT_EQ(json::parse(cancel->body)["status"], "cancelled");
    auto again = h.client().Post("/v1/jobs/" + id + "/cancel", h.auth(token), "", "");
    EXPECT_EQ(again->status, 409);
    EXPECT_EQ(json::parse(again->body)["error"]["code"], "conflict");

    auto retry = h.client().Post("/v1/jobs/" + id + "/retry", h.auth(token), "", "");
    ASSERT_EQ(retry->status, 202) << retry->body;
    const json accepted = json::parse(retry->body);
    EXPECT_EQ(accepted["retry_of"], id);
    EXPECT_EQ(accepted["status"], "queued");
    h.resume_workers();
    const json done = h.wait_final(token, accepted["id"]);
    EXPECT_EQ(done["status"], "succeeded");
    EXPECT_EQ(done["retry_of"], id);
    auto retry_done = h.client().Post("/v1/jobs/" + done["id"].get<std::string>() + "/retry",
                                      h.auth(token), "", "");
    EXPECT_EQ(retry_done->status, 409);
}

TEST(Lifecycle, CancelRunningStopsWithinATileAndKeepsNoOutput) {
    Harness h;
    const std::string token = h.new_session();
    h.log->hold_next_progress();
    const std::string id =
        submit_id(h, token, png_bytes(test_image(40, 40, 4)), {{"params", {{"tile", 16}}}});
    EXPECT_EQ(h.log->wait_held(), id);
    const json running = h.get_job(token, id);
    EXPECT_EQ(running["status"], "running");
    EXPECT_EQ(running["progress"]["done"], 1);
    EXPECT_GT(running["progress"]["total"], 1);
    // From another node when there are several: the running node stops it at its next tile.
    auto cancel = h.client_away_from(id).Post("/v1/jobs/" + id + "/cancel", h.auth(token), "", "");
    EXPECT_EQ(cancel->status, 202) << cancel->body;
    h.log->release();
    const json done = h.wait_final(token, id);
    EXPECT_EQ(done["status"], "cancelled");
    EXPECT_EQ(done["outputs"].size(), 0u);
    EXPECT_EQ(h.client().Get("/v1/jobs/" + id + "/outputs/0", h.auth(token))->status, 404);
    // The worker carries on with the next job.
    const std::string next = submit_id(h, token, png_bytes(test_image(8, 8, 5)));
    EXPECT_EQ(h.wait_final(token, next)["status"], "succeeded");
}

TEST(Lifecycle, IdempotentResubmission) {
    Harness h;
    const std::string token = h.new_session(), other = h.new_session();
    const std::string png = png_bytes(test_image(8, 8, 6));
    auto first = h.submit(token, png, {}, "key-1");
    ASSERT_EQ(first->status, 202);
    const std::string id = json::parse(first->body)["id"];
    auto second = h.submit(token, png, {}, "key-1");
    ASSERT_EQ(second->status, 200) << second->body;
    EXPECT_EQ(json::parse(second->body)["id"], id);
    auto different = h.submit(token, png, {{"priority", "low"}}, "key-1");
    EXPECT_EQ(different->status, 422);
    EXPECT_EQ(json::parse(different->body)["error"]["code"], "idempotency_key_reused");
    auto other_session = h.submit(other, png, {}, "key-1");  // keys are per session
    EXPECT_EQ(other_session->status, 202);
    auto list = h.client().Get("/v1/jobs", h.auth(token));
    EXPECT_EQ(json::parse(list->body)["jobs"].size(), 1u);
}

TEST(Lifecycle, ConcurrentResubmissionsWithOneKeyMakeOneJob) {
    Harness h;
    const std::string token = h.new_session();
    const std::string png = png_bytes(test_image(8, 8, 16));
    constexpr int clients = 8;
    std::vector<Answer> answers(clients);
    run_concurrently(clients, [&](int k) {
        answers[static_cast<size_t>(k)] = answer(h.submit(token, png, {}, "same-key"));
    });
    std::set<std::string> ids;
    int created = 0;
    for (const Answer& res : answers) {
        ASSERT_TRUE(res.status == 202 || res.status == 200) << res.status << " " << res.body;
        created += res.status == 202 ? 1 : 0;
        ids.insert(json::parse(res.body)["id"].get<std::string>());
    }
    EXPECT_EQ(created, 1);
    EXPECT_EQ(ids.size(), 1u);
    const json list = json::parse(h.client().Get("/v1/jobs", h.auth(token))->body);
    ASSERT_EQ(list["jobs"].size(), 1u);
    EXPECT_EQ(h.wait_final(token, *ids.begin())["status"], "succeeded");
}

TEST(Lifecycle, QueuePauseResumeAndClear) {
    Harness h;
    const std::string token = h.new_session();
    auto pause = h.client().Post("/v1/queue/pause", h.auth(token), "", "");
    ASSERT_EQ(pause->status, 200);
    EXPECT_EQ(json::parse(pause->body)["paused"], true);
    const std::string png = png_bytes(test_image(8, 8, 7));
    const std::string j1 = submit_id(h, token, png), j2 = submit_id(h, token, png);
    auto queue = h.client().Get("/v1/queue", h.auth(token));
    EXPECT_EQ(json::parse(queue->body)["queued"], 2);
    EXPECT_EQ(h.get_job(token, j1)["status"], "queued");

    auto clear = h.client().Delete("/v1/queue", h.auth(token));
    ASSERT_EQ(clear->status, 200);
    EXPECT_EQ(json::parse(clear->body)["cancelled"], 2);
    EXPECT_EQ(h.get_job(token, j2)["status"], "cancelled");

    const std::string j3 = submit_id(h, token, png);
    auto resume = h.client().Post("/v1/queue/resume", h.auth(token), "", "");
    EXPECT_EQ(json::parse(resume->body)["paused"], false);
    EXPECT_EQ(h.wait_final(token, j3)["status"], "succeeded");
}

TEST(Lifecycle, DrainingRefusesNewJobs) {
    Harness h;
    const std::string token = h.new_session();
    h.drain(std::chrono::seconds(30));
    auto res = h.submit(token, png_bytes(test_image(8, 8, 8)));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "draining");
    EXPECT_EQ(h.client().Get("/readyz")->status, 503);
    EXPECT_EQ(h.client().Get("/healthz")->status, 200);
}

TEST(Lifecycle, RestartFinishesEveryAcceptedJob) {
    TempDir data;
    std::string token;
    std::vector<std::string> ids;
    {
        Harness first(Harness::default_scheduler(), {}, data.path());
        token = first.new_session();
        first.log->hold_next_progress();
        ids.push_back(submit_id(first, token, png_bytes(test_image(40, 40, 9)),
                                {{"params", {{"tile", 16}}}}));
        first.log->wait_held();  // one job running, the rest queued behind it
        for (int i = 0; i < 4; ++i)
            ids.push_back(submit_id(first, token, png_bytes(test_image(8, 8, 20 + i))));
        std::thread stopper([&] { first.service->stop(); });
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        first.log->release();
        stopper.join();
    }
    Harness second(Harness::default_scheduler(), {}, data.path());
    for (const std::string& id : ids) {
        const json done = second.wait_final(token, id);
        EXPECT_EQ(done["status"], "succeeded") << done.dump();
        EXPECT_LE(done["attempts"], 2);
        auto out = second.client().Get("/v1/jobs/" + id + "/outputs/0", second.auth(token));
        ASSERT_EQ(out->status, 200);
        EXPECT_NO_THROW(image::decode_image(
            std::span(reinterpret_cast<const uint8_t*>(out->body.data()), out->body.size())));
    }
}

}  // namespace
}  // namespace kiln::test

namespace kiln::test {
namespace {

TEST(Lifecycle, JobTimeoutFailsTheJobAndWorkersCarryOn) {
    auto options = Harness::default_scheduler();
    options.job_timeout = std::chrono::milliseconds(1);  // far below 16 tiles' run time
    Harness h(options);
    const std::string token = h.new_session();
    const std::string id =
        submit_id(h, token, png_bytes(test_image(40, 40, 30)), {{"params", {{"tile", 16}}}});
    const json done = h.wait_final(token, id);
    EXPECT_EQ(done["status"], "failed");
    EXPECT_EQ(done["error"]["code"], "timeout");
    EXPECT_EQ(done["outputs"].size(), 0u);
}

TEST(Lifecycle, RetentionRemovesOldOutputsAndExpiredSessions) {
    TempDir data;
    server::ServerOptions server;
    server.session_ttl_s = 2;
    Harness h(Harness::default_scheduler(), server, data.path());
    const std::string token = h.new_session();
    auto res = h.submit(token, png_bytes(test_image(8, 8, 31)));
    const std::string id = json::parse(res->body)["id"];
    h.wait_final(token, id);
    h.stop();

    // A second service on the same data, sweeping often with a tiny output TTL.
    app::ServiceOptions options;
    options.models_dir = h.dir.path() / "models";
    options.data_dir = data.path();
    options.scheduler = Harness::default_scheduler();
    options.server.port = 0;
    options.output_ttl = std::chrono::milliseconds(1);
    options.sweep_interval = std::chrono::milliseconds(20);
    app::Service service(options);
    service.start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool gone = false;
    while (!gone && std::chrono::steady_clock::now() < deadline) {
        gone = !std::filesystem::exists(data.path() / "results" / token.substr(0, 32) / id);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(gone) << "the finished job's files were not swept";
    // The session itself expires after 2 s and is swept with its folder.
    bool session_gone = false;
    while (!session_gone && std::chrono::steady_clock::now() < deadline) {
        session_gone = !std::filesystem::exists(data.path() / "results" / token.substr(0, 32));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(session_gone);
}

}  // namespace
}  // namespace kiln::test
