// GET /v1/events: ordered job events for this session only, replay with Last-Event-ID, and
// polling with updated_since reaching the same final state.
#include <gtest/gtest.h>

#include <thread>

#include "tests/server/server_harness.h"

namespace kiln::test {
namespace {

using nlohmann::json;

struct Event {
    int64_t id = 0;
    std::string type;
    json data;
};

std::vector<Event> parse_events(const std::string& stream) {
    std::vector<Event> events;
    Event current;
    size_t start = 0;
    while (start < stream.size()) {
        size_t end = stream.find('\n', start);
        if (end == std::string::npos)
            break;
        const std::string line = stream.substr(start, end - start);
        start = end + 1;
        if (line.empty()) {
            if (!current.type.empty())
                events.push_back(current);
            current = Event{};
        } else if (line.rfind("id: ", 0) == 0) {
            current.id = std::stoll(line.substr(4));
        } else if (line.rfind("event: ", 0) == 0) {
            current.type = line.substr(7);
        } else if (line.rfind("data: ", 0) == 0) {
            current.data = json::parse(line.substr(6));
        }
    }
    return events;
}

// Reads the stream until `done` says so (or the read times out).
std::vector<Event> read_events(const Harness& h,
                               const std::string& token,
                               const std::string& last_event_id,
                               int read_timeout_s,
                               const std::function<bool(const std::vector<Event>&)>& done) {
    httplib::Client cli("127.0.0.1", h.next_port());  // any node serves any stream
    cli.set_read_timeout(read_timeout_s, 0);
    httplib::Headers headers = h.auth(token);
    if (!last_event_id.empty())
        headers.emplace("Last-Event-ID", last_event_id);
    std::string buffer;
    std::vector<Event> events;
    cli.Get("/v1/events", headers, [&](const char* data, size_t n) {
        buffer.append(data, n);
        events = parse_events(buffer);
        return !done(events);
    });
    return events;
}

bool has_final(const std::vector<Event>& events, const std::string& id) {
    for (const Event& e : events) {
        if (e.type == "job" && e.data["id"] == id &&
            (e.data["status"] == "succeeded" || e.data["status"] == "failed"))
            return true;
    }
    return false;
}

TEST(Events, OrderedSessionScopedAndReplayable) {
    Harness h;
    const std::string a = h.new_session(), b = h.new_session();
    // Connect first (from now on), then submit.
    std::vector<Event> live;
    std::string job_id;
    std::mutex mutex;
    std::thread listener([&] {
        live = read_events(h, a, "", 120, [&](const std::vector<Event>& events) {
            std::lock_guard lock(mutex);
            return !job_id.empty() && has_final(events, job_id);
        });
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the stream open
    auto res = h.submit(a, png_bytes(test_image(40, 40, 1)), {{"params", {{"tile", 16}}}});
    ASSERT_EQ(res->status, 202);
    {
        std::lock_guard lock(mutex);
        job_id = json::parse(res->body)["id"];
    }
    const json polled = h.wait_final(a, job_id);
    // A later change wakes a quiet stream. A stream on another node than the one running the
    // job learns of changes by polling the shared store, so it may read this job's events in
    // the same batch as the first job's last ones: after them, in the order of their ids.
    auto later = h.submit(a, png_bytes(test_image(8, 8, 2)));
    ASSERT_EQ(later->status, 202);
    const std::string later_id = json::parse(later->body)["id"];
    listener.join();

    ASSERT_TRUE(has_final(live, job_id));
    for (size_t i = 1; i < live.size(); ++i)
        EXPECT_GT(live[i].id, live[i - 1].id);
    bool final_seen = false;
    for (const Event& e : live) {
        if (e.data["id"] == job_id) {
            EXPECT_FALSE(final_seen) << "an event of the job after its final one";
            final_seen = e.data["status"] == polled["status"];
        } else {
            EXPECT_EQ(e.data["id"], later_id) << "an event of a job this session did not submit";
            EXPECT_TRUE(final_seen) << "the later job's event before the first one's end";
        }
    }
    EXPECT_TRUE(final_seen);

    // Replay from the first event: the final state again, with a larger id.
    const auto replay = read_events(h, a, std::to_string(live.front().id), 120,
                                    [&](const auto& events) { return has_final(events, job_id); });
    ASSERT_TRUE(has_final(replay, job_id));
    EXPECT_GT(replay.front().id, live.front().id);
    // Polling with updated_since=<event id> sees the same change.
    auto since =
        h.client().Get("/v1/jobs?updated_since=" + std::to_string(live.front().id), h.auth(a));
    bool found = false;
    const json changed = json::parse(since->body)["jobs"];
    for (const auto& job : changed)
        found = found || (job["id"] == job_id && job["status"] == "succeeded");
    EXPECT_TRUE(found) << since->body << " front " << live.front().id;

    // Session B replaying everything sees none of A's jobs (the read ends on its timeout).
    const auto other = read_events(h, b, "0", 1, [](const auto&) { return false; });
    EXPECT_TRUE(other.empty());
}

}  // namespace
}  // namespace kiln::test
