// GET /v1/events: Server-Sent Events of this session's job changes. Each event is the job's
// current JSON with `id:` = its update_seq (so GET /v1/jobs?updated_since=<id> polls the
// same changes); Last-Event-ID replays from the store, `event: reset` when too much changed.
#include <algorithm>
#include <charconv>
#include <chrono>

#include "core/error.h"
#include "server/api_context.h"
#include "server/api_error.h"
#include "server/job_json.h"

namespace kiln::server {

namespace {

constexpr int max_replay = 1000;
constexpr auto heartbeat = std::chrono::seconds(15);
constexpr auto liveness_check = std::chrono::milliseconds(500);
constexpr auto store_retry = std::chrono::seconds(1);  // reads again while the store is away

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

// Where one stream is: its cursor, the change generation it has seen, whether it has opened
// and read the store once, and when it last showed the client it is alive (the heartbeat's
// clock: a read of the store, which may write events, or a heartbeat).
struct StreamState {
    int64_t cursor = 0;
    uint64_t seen = 0;
    bool opened = false;
    bool replayed = false;
    std::chrono::steady_clock::time_point alive_at = std::chrono::steady_clock::now();
};

// Reads the changes after the cursor and writes them; false ends the stream (session
// deleted, client gone). A store out of reach is no end: nothing is read, the cursor stays,
// `read` is false, and a later pass reads again, so the stream carries on where it was once
// the store is back.
bool write_store_changes(ApiContext& context,
                         const std::string& session_id,
                         StreamState& state,
                         httplib::DataSink& sink,
                         bool& read) {
    read = false;
    try {
        if (!context.jobs.find_session(session_id))
            return false;  // session deleted
        if (!write_changes(context, session_id, state.cursor, !state.replayed, sink))
            return false;
    } catch (const core::Error& e) {
        if (e.code() != core::ErrorCode::UNAVAILABLE)
            throw;
        return true;
    }
    read = true;
    state.replayed = true;
    state.alive_at = std::chrono::steady_clock::now();
    return true;
}

// One pass of a stream: the opening comment (first), changes since the cursor, then a wait
// for the next change or a heartbeat. False ends the stream.
bool stream_step(ApiContext& context,
                 const std::string& session_id,
                 StreamState& state,
                 httplib::DataSink& sink) {
    if (!state.opened) {
        const std::string open = ": kiln events\nretry: 2000\n\n";
        if (!sink.write(open.data(), open.size()))
            return false;
        state.opened = true;
    }
    bool read = false;
    if (!write_store_changes(context, session_id, state, sink, read))
        return false;
    // Waits in short slices, asking between them whether the client is still there
    // (cpp-httplib peeks at the socket): a closed stream gives back its places (the
    // server's and its session's) within a slice rather than at the next heartbeat. After a
    // failed read the wait is one retry interval: no change wakes a stream while the store is
    // away.
    const uint64_t before = state.seen;
    const auto now = std::chrono::steady_clock::now();
    const auto quiet_until =
        read ? now + heartbeat : std::min(now + store_retry, state.alive_at + heartbeat);
    while (state.seen == before && std::chrono::steady_clock::now() < quiet_until) {
        if (!context.changes.wait(state.seen, liveness_check))
            return false;  // server stopping
        if (sink.is_writable && !sink.is_writable())
            return false;  // client gone
    }
    if (std::chrono::steady_clock::now() - state.alive_at >= heartbeat) {  // quiet for 15 s
        static const std::string ping = ": heartbeat\n\n";
        state.alive_at = std::chrono::steady_clock::now();
        return sink.write(ping.data(), ping.size());
    }
    return true;
}

}  // namespace

void register_event_routes(Router& router, ApiContext& context) {
    router.add("GET", "/v1/events",
               [&context](const httplib::Request& req, httplib::Response& res,
                          const std::string& session_id) {
                   const int64_t start = last_event_id(req, context.jobs);
                   const size_t limit = context.options.max_event_streams_per_session;
                   std::shared_ptr<SessionStreams::Slot> slot =
                       context.streams.open(session_id, limit);
                   if (!slot) {
                       throw ApiError(ApiCode::TOO_MANY_STREAMS,
                                      "this session has " + std::to_string(limit) +
                                          " event streams open (the limit); close one, or poll GET "
                                          "/v1/jobs?updated_since=",
                                      5);
                   }
                   res.set_header("Cache-Control", "no-store");
                   res.set_header("X-Accel-Buffering", "no");  // proxies: do not buffer
                   auto state = std::make_shared<StreamState>();
                   state->cursor = start;
                   state->seen = context.changes.generation();
                   res.set_chunked_content_provider(
                       "text/event-stream",
                       // The provider holds the session's stream slot until the response ends.
                       [&context, session_id, state, slot](size_t, httplib::DataSink& sink) {
                           try {
                               return stream_step(context, session_id, *state, sink);
                           } catch (const std::exception&) {
                               return false;  // the client reconnects with Last-Event-ID
                           }
                       });
               });
}

}  // namespace kiln::server
