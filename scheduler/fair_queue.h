// The queue of waiting jobs: FIFO per session with priority first within a session, and
// round robin across sessions, so one session's backlog delays another session's job by at
// most one job per worker. Not thread-safe: the Scheduler guards it.
#pragma once

#include <cstdint>

#include <array>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "scheduler/job.h"

namespace kiln::scheduler {

struct QueuedJob {
    std::string session_id;
    std::string job_id;
    uint64_t queue_op = 0;  // the queue's operation number of the pop that returned it
};

class FairQueue {
  public:
    // Returns the queue's operation number of this push. Pushes and pops are numbered in one
    // sequence, so they can be ordered exactly whatever order their notifications arrive in.
    uint64_t push(const std::string& session_id, const std::string& job_id, Priority priority);
    // The next job to run; skips paused sessions. Empty when nothing can run.
    std::optional<QueuedJob> pop();
    bool remove(const std::string& session_id, const std::string& job_id);
    // Jobs that would start before this one (0: next), or empty when it is not queued.
    std::optional<int> position(const std::string& session_id, const std::string& job_id) const;
    // Removes and returns the session's queued jobs.
    std::vector<std::string> clear_session(const std::string& session_id);
    void set_paused(const std::string& session_id, bool paused);
    bool is_paused(const std::string& session_id) const;

    size_t size() const { return size_; }
    size_t session_size(const std::string& session_id) const;

  private:
    struct SessionQueue {
        std::array<std::deque<std::string>, 3> by_priority;  // HIGH, NORMAL, LOW
        size_t size() const;
        // The job ids in the order they would run.
        std::vector<std::string> ordered() const;
    };

    void drop_if_empty(const std::string& session_id);

    std::map<std::string, SessionQueue> queues_;
    std::list<std::string> rotation_;  // sessions with queued jobs, next to serve first
    std::set<std::string> paused_;
    uint64_t next_op_ = 0;
    size_t size_ = 0;
};

}  // namespace kiln::scheduler
