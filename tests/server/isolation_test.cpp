// Sessions × jobs submitted concurrently with distinct inputs: every output equals what the
// engine computes for that job's own input, and no session reaches another's jobs.
#include <gtest/gtest.h>

#include <thread>

#include "tests/server/server_harness.h"

namespace kiln::test {
namespace {

using nlohmann::json;

TEST(Isolation, ConcurrentSessionsGetTheirOwnResultsOnly) {
    constexpr int sessions = 20, jobs_per_session = 10;
    auto options = Harness::default_scheduler();
    options.workers = 2;
    Harness h(options);
    std::vector<std::string> tokens;
    for (int s = 0; s < sessions; ++s)
        tokens.push_back(h.new_session());

    struct Submitted {
        int session;
        int seed;
        std::string id;
    };
    std::mutex mutex;
    std::vector<Submitted> submitted;
    std::vector<std::thread> threads;
    for (int s = 0; s < sessions; ++s) {
        threads.emplace_back([&, s] {
            for (int j = 0; j < jobs_per_session; ++j) {
                const int seed = 100 + s * jobs_per_session + j;
                // A burst of connections can overflow cpp-httplib's listen backlog (5, compiled
                // in); clients retry transport errors safely with an Idempotency-Key.
                const std::string png = png_bytes(test_image(10 + j, 9 + s, seed));
                const std::string key = "job-" + std::to_string(seed);
                auto res = h.submit(tokens[static_cast<size_t>(s)], png, {}, key);
                for (int attempt = 0; !res && attempt < 3; ++attempt)
                    res = h.submit(tokens[static_cast<size_t>(s)], png, {}, key);
                ASSERT_TRUE(res) << httplib::to_string(res.error());
                ASSERT_TRUE(res->status == 202 || res->status == 200) << res->body;
                std::lock_guard lock(mutex);
                submitted.push_back({s, seed, json::parse(res->body)["id"]});
            }
        });
    }
    for (auto& t : threads)
        t.join();
    ASSERT_EQ(submitted.size(), static_cast<size_t>(sessions * jobs_per_session));

    for (const Submitted& job : submitted) {
        const std::string& token = tokens[static_cast<size_t>(job.session)];
        const json done = h.wait_final(token, job.id);
        ASSERT_EQ(done["status"], "succeeded") << done.dump();
        auto out = h.client().Get("/v1/jobs/" + job.id + "/outputs/0", h.auth(token));
        ASSERT_EQ(out->status, 200);
        const auto decoded = image::decode_image(
            std::span(reinterpret_cast<const uint8_t*>(out->body.data()), out->body.size()));
        const int j = (job.seed - 100) % jobs_per_session;
        const image::Image input = test_image(10 + j, 9 + job.session, job.seed);
        EXPECT_EQ(decoded.samples, expected_upscale(h.dir.path() / "models", input).samples)
            << "job " << job.id;

        // Every other session: 404 for each way of reaching this job.
        const std::string& other = tokens[static_cast<size_t>((job.session + 1) % sessions)];
        auto cli = h.client();
        const auto headers = h.auth(other);
        EXPECT_EQ(cli.Get("/v1/jobs/" + job.id, headers)->status, 404);
        EXPECT_EQ(cli.Get("/v1/jobs/" + job.id + "/outputs/0", headers)->status, 404);
        EXPECT_EQ(cli.Post("/v1/jobs/" + job.id + "/cancel", headers, "", "")->status, 404);
        EXPECT_EQ(cli.Post("/v1/jobs/" + job.id + "/retry", headers, "", "")->status, 404);
        EXPECT_EQ(cli.Delete("/v1/jobs/" + job.id, headers)->status, 404);
    }
    for (int s = 0; s < sessions; ++s) {
        auto list = h.client().Get("/v1/jobs?limit=100", h.auth(tokens[static_cast<size_t>(s)]));
        const json jobs = json::parse(list->body)["jobs"];
        EXPECT_EQ(jobs.size(), static_cast<size_t>(jobs_per_session));
        for (const auto& listed : jobs) {
            const auto it = std::find_if(submitted.begin(), submitted.end(),
                                         [&](const Submitted& x) { return x.id == listed["id"]; });
            ASSERT_NE(it, submitted.end());
            EXPECT_EQ(it->session, s);
        }
    }
}

}  // namespace
}  // namespace kiln::test
