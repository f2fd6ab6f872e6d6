// The in-memory JobQueue of one process (scheduler/job_queue.h has the promises): a deque
// per session and priority, and the rotation of sessions with queued jobs. Its claims never
// expire: they die with the process, as the queue does, and a restart requeues from the job
// store. The Scheduler acks every job its worker ends, so claimed_ holds the running ones.
#pragma once

#include <cstdint>

#include <array>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "scheduler/job_queue.h"

namespace kiln::scheduler {

class FairQueue final : public JobQueue {
  public:
    uint64_t push(const std::string& session_id,
                  const std::string& job_id,
                  Priority priority) override;
    PushResult push_within(const std::string& session_id,
                           const std::string& job_id,
                           Priority priority,
                           const QueueLimits& limits) override;
    std::optional<QueuedJob> pop() override;
    void ack(const QueuedJob& job) override;
    bool renew(const QueuedJob& job) override;
    bool request_cancel(const std::string& session_id, const std::string& job_id) override;
    bool cancel_requested(const QueuedJob& job) const override;
    bool remove(const std::string& session_id, const std::string& job_id) override;
    std::optional<int> position(const std::string& session_id,
                                const std::string& job_id) const override;
    std::vector<std::string> clear_session(const std::string& session_id) override;
    void set_paused(const std::string& session_id, bool paused) override;
    bool is_paused(const std::string& session_id) const override;

    size_t size() const override { return size_; }
    size_t session_size(const std::string& session_id) const override;

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
    // (session, job) popped and not acked -> a cancel was requested.
    std::map<std::pair<std::string, std::string>, bool> claimed_;
    uint64_t next_op_ = 0;
    size_t size_ = 0;
};

}  // namespace kiln::scheduler
