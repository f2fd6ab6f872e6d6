// Limits on what one client may hold that live in the server's memory: event streams per
// session, and sessions created per client address per hour. (Queued jobs and stored bytes
// per session are the scheduler's; body and header sizes cpp-httplib's.)
#pragma once

#include <httplib.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace kiln::server {

// Counts the event streams each session has open.
class SessionStreams {
  public:
    // One open stream of a session; destroying it frees the place.
    class Slot {
      public:
        ~Slot();
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;

      private:
        friend class SessionStreams;
        Slot(SessionStreams& owner, std::string session_id)
            : owner_(owner), session_id_(std::move(session_id)) {}
        SessionStreams& owner_;
        std::string session_id_;
    };

    // A place for one more stream of the session, freed when the last copy of the handle is
    // destroyed (the stream's response ends); nullptr when the session has `limit` open.
    std::shared_ptr<Slot> open(const std::string& session_id, size_t limit);
    size_t open_count(const std::string& session_id) const;

  private:
    void close(const std::string& session_id);

    mutable std::mutex mutex_;
    std::map<std::string, size_t> open_;
};

// Sessions created per client address in a sliding hour.
class SessionCreationLimiter {
  public:
    // 0 when the client may create one more session now (it is counted), otherwise the
    // seconds until it may (its oldest creation in the window leaves it). per_hour 0: no limit.
    int64_t admit(const std::string& client, int64_t now_ms, size_t per_hour);

    static constexpr int64_t window_ms = 3600 * 1000;
    // Addresses remembered at most; past that (a flood from many addresses, which a
    // per-address limit cannot stop anyway) creations are admitted without being counted,
    // so memory stays bounded.
    static constexpr size_t max_clients = 100000;

  private:
    void forget_expired(int64_t now_ms);

    std::mutex mutex_;
    std::map<std::string, std::deque<int64_t>> created_;
    int64_t next_sweep_ms_ = 0;
};

// The client's address: the connection's peer, or with `trust_forwarded_for` the last
// X-Forwarded-For entry (the one the reverse proxy in front appended).
std::string client_address(const httplib::Request& req, bool trust_forwarded_for);

}  // namespace kiln::server
