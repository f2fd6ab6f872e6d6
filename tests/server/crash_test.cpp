// The real process: `kiln serve` killed with SIGKILL while jobs are queued and running; after
// a restart on the same data directory every accepted job finishes and every output is
// complete. SIGTERM then drains and exits 0.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/server/server_harness.h"

namespace kiln::test {
namespace {

using nlohmann::json;

struct Process {
    pid_t pid = -1;
    int port = 0;
};

Process start_kiln(const std::filesystem::path& models,
                   const std::filesystem::path& data,
                   const std::filesystem::path& log) {
    Process p;
    p.pid = fork();
    if (p.pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execl(KILN_BINARY, "kiln", "serve", "--port", "0", "--threads", "1", "--models",
              models.c_str(), "--data", data.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    const std::regex listening("kiln serve on http://127\\.0\\.0\\.1:([0-9]+)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        std::smatch m;
        const std::string s = text.str();
        if (std::regex_search(s, m, listening)) {
            p.port = std::stoi(m[1]);
            return p;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "kiln serve did not start";
    return p;
}

TEST(Crash, KillNineThenRestartFinishesEveryAcceptedJob) {
    TempDir dir;
    const auto models = dir.path() / "models";
    std::filesystem::create_directories(models);
    std::filesystem::copy_file(std::filesystem::path(KILN_TEST_DATA) / "weights/srvgg_x4.pth",
                               models / "srvgg_x4.pth");
    const auto data = dir.path() / "data";

    Process first = start_kiln(models, data, dir.path() / "first.log");
    ASSERT_GT(first.port, 0);
    httplib::Client cli("127.0.0.1", first.port);
    auto session = cli.Post("/v1/sessions", "", "application/json");
    ASSERT_TRUE(session);
    const std::string token = json::parse(session->body)["token"];
    const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) {
        const json body = {{"model", "srvgg_x4"},
                           {"params", {{"tile", 16}}},
                           {"input", {{"image", base64(png_bytes(test_image(48, 48, i)))}}}};
        auto res = cli.Post("/v1/jobs", auth, body.dump(), "application/json");
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 202) << res->body;
        ids.push_back(json::parse(res->body)["id"]);
    }
    // Kill while the first job runs (when it is seen running; it may also be done already).
    const auto seen_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < seen_deadline) {
        auto res = cli.Get("/v1/jobs/" + ids.front(), auth);
        if (!res || json::parse(res->body)["status"] != "queued")
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    kill(first.pid, SIGKILL);
    int status = 0;
    waitpid(first.pid, &status, 0);

    Process second = start_kiln(models, data, dir.path() / "second.log");
    ASSERT_GT(second.port, 0);
    httplib::Client again("127.0.0.1", second.port);
    again.set_read_timeout(120, 0);
    for (const std::string& id : ids) {
        json job;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
        while (std::chrono::steady_clock::now() < deadline) {
            auto res = again.Get("/v1/jobs/" + id, auth);
            ASSERT_TRUE(res);
            ASSERT_EQ(res->status, 200) << "accepted job " << id << " was lost";
            job = json::parse(res->body);
            if (job["status"] != "queued" && job["status"] != "running")
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ASSERT_EQ(job["status"], "succeeded") << job.dump();
        auto out = again.Get("/v1/jobs/" + id + "/outputs/0", auth);
        ASSERT_EQ(out->status, 200);
        const auto image = image::decode_image(
            std::span(reinterpret_cast<const uint8_t*>(out->body.data()), out->body.size()));
        EXPECT_EQ(image.width, 192);
    }

    kill(second.pid, SIGTERM);
    waitpid(second.pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace kiln::test
