// GET /v1/events: Server-Sent Events of this session's job changes. Each event is the job's
// current JSON with `id:` = its update_seq (so GET /v1/jobs?updated_since=<id> polls the
// same changes); Last-Event-ID replays from the store, `event: reset` when too much changed.
#include <charconv>

#include "server/api_context.h"
#include "server/api_error.h"
#include "server/job_json.h"

namespace kiln::server {

namespace {

constexpr int max_replay = 1000;
constexpr auto heartbeat = std::chrono::seconds(15);
constexpr auto liveness_check = std::chrono::milliseconds(500);

int64_t last_event_id(const httplib::Request& req, scheduler::JobStore& jobs) {
    std::string text = req.get_header_value("Last-Event-ID");
    if (text.empty() && req.has_param("last_event_id"))
        text = req.get_param_value("last_event_id");
    if (text.empty())
        return jobs.last_update_seq();  // only changes from now on
    int64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size() || id < 0) {
        throw ApiError(ApiCode::BAD_REQUEST, "Last-Event-ID must be an event id (an integer)");
    }
    return id;
}

// Writes the changes after `cursor` (advancing it); false when the client is gone.
bool write_changes(ApiContext& context,
                   const std::string& session_id,
                   int64_t& cursor,
                   bool first,
                   httplib::DataSink& sink) {
    scheduler::JobQuery query;
    query.updated_since = cursor;
    query.oldest_change_first = true;
    query.limit = max_replay + 1;
    const std::vector<scheduler::Job> jobs = context.scheduler.list(session_id, query);
    std::string out;
    if (first && static_cast<int>(jobs.size()) > max_replay) {
        cursor = context.jobs.last_update_seq();
        out = "event: reset\ndata: {}\n\n";
    } else {
        for (const scheduler::Job& job : jobs) {
            out += "id: " + std::to_string(job.update_seq) +
                   "\nevent: job\ndata: " + job_json(job).dump() + "\n\n";
            cursor = std::max(cursor, job.update_seq);
        }
    }
    return out.empty() || sink.write(out.data(), out.size());
}

// One pass of a stream: the opening comment (first), changes since the cursor, then a wait
// for the next change or a heartbeat. False ends the stream.
bool stream_step(ApiContext& context,
                 const std::string& session_id,
                 int64_t& cursor,
                 uint64_t& seen,
                 bool& first,
                 httplib::DataSink& sink) {
    if (first) {
        const std::string open = ": kiln events\nretry: 2000\n\n";
        if (!sink.write(open.data(), open.size()))
            return false;
    }
    const bool replay = first;
    first = false;
    if (!context.jobs.find_session(session_id))
        return false;  // session deleted
    if (!write_changes(context, session_id, cursor, replay, sink))
        return false;
    // Waits in short slices, asking between them whether the client is still there
    // (cpp-httplib peeks at the socket): a closed stream gives back its places (the
    // server's and its session's) within a slice rather than at the next heartbeat.
    const uint64_t before = seen;
    const auto quiet_until = std::chrono::steady_clock::now() + heartbeat;
    while (seen == before && std::chrono::steady_clock::now() < quiet_until) {
        if (!context.changes.wait(seen, liveness_check))
            return false;  // server stopping
        if (sink.is_writable && !sink.is_writable())
            return false;  // client gone
    }
    if (seen == before) {  // quiet for 15 s
        static const std::string ping = ": heartbeat\n\n";
        return sink.write(ping.data(), ping.size());
    }
    return true;
}

}  // namespace

void register_event_routes(Router& router, ApiContext& context) {
    router.add(
        "GET", "/v1/events",
        [&context](const httplib::Request& req, httplib::Response& res,
                   const std::string& session_id) {
            const int64_t start = last_event_id(req, context.jobs);
            const size_t limit = context.options.max_event_streams_per_session;
            std::shared_ptr<SessionStreams::Slot> slot = context.streams.open(session_id, limit);
            if (!slot) {
                throw ApiError(ApiCode::TOO_MANY_STREAMS,
                               "this session has " + std::to_string(limit) +
                                   " event streams open (the limit); close one, or poll GET "
                                   "/v1/jobs?updated_since=",
                               5);
            }
            res.set_header("Cache-Control", "no-store");
            res.set_header("X-Accel-Buffering", "no");  // proxies: do not buffer
            struct State {
                int64_t cursor;
                uint64_t seen;
                bool first = true;
            };
            auto state = std::make_shared<State>(State{start, context.changes.generation(), true});
            res.set_chunked_content_provider(
                "text/event-stream",
                // The provider holds the session's stream slot until the response ends.
                [&context, session_id, state, slot](size_t, httplib::DataSink& sink) {
                    try {
                        return stream_step(context, session_id, state->cursor, state->seen,
                                           state->first, sink);
                    } catch (const std::exception&) {
                        return false;  // the client reconnects with Last-Event-ID
                    }
                });
        });
}

}  // namespace kiln::server
