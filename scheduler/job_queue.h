// The queue of waiting jobs behind the Scheduler, as an interface so that the queue can live
// outside the process (several nodes sharing one queue) while the Scheduler stays as it is.
// Every implementation keeps the same promises, checked by one contract suite
// (tests/scheduler/job_queue_contract.h, run on FairQueue and on RedisJobQueue):
//   - FIFO within a session, higher priority first (HIGH, NORMAL, LOW);
//   - round robin across sessions: a session that has had a job popped goes to the back, so
//     one session's backlog delays another session's job by at most one job per pop;
//   - paused sessions are skipped and keep their jobs;
//   - pushes and pops are numbered in one increasing sequence (queue operations), so events
//     raised from different threads can be ordered exactly;
//   - a popped job is claimed by the node that popped it until ack(); where claims can expire
//     (a shared queue, whose node may die mid-job), pop() hands the job out again;
//   - push_within() checks the limits and pushes as one step, so nodes sharing a queue never
//     admit past a limit together;
//   - a cancel request on a claimed job reaches whichever node holds its claim.
// Implementations need not be thread-safe: the Scheduler calls them under its own mutex.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/job.h"

namespace kiln::scheduler {

struct QueuedJob {
    std::string session_id;
    std::string job_id;
    uint64_t queue_op = 0;  // the queue's operation number of the pop that returned it
    int delivery = 1;       // 1 the first time it is handed out, 2.. after a claim expired
};

// How many jobs push_within() admits; 0: no limit.
struct QueueLimits {
    size_t max_queued = 0;  // all sessions
    size_t max_queued_per_session = 0;
};

enum class PushOutcome {
    PUSHED,
    ALREADY_THERE,  // queued or claimed already: left as it was
    QUEUE_FULL,
    SESSION_QUEUE_FULL,
};

struct PushResult {
    PushOutcome outcome = PushOutcome::PUSHED;
    uint64_t queue_op = 0;  // the push's operation number when PUSHED or ALREADY_THERE
    bool queued() const {
        return outcome == PushOutcome::PUSHED || outcome == PushOutcome::ALREADY_THERE;
    }
};

class JobQueue {
  public:
    virtual ~JobQueue() = default;

    // Returns the operation number of this push.
    virtual uint64_t push(const std::string& session_id,
                          const std::string& job_id,
                          Priority priority) = 0;
    // push() unless the queue already holds limits.max_queued jobs or the session holds
    // limits.max_queued_per_session: then nothing changes (the whole queue's limit is
    // reported when both are reached). A job already queued or claimed is left as it is and
    // answered ALREADY_THERE (with a fresh operation number), so that pushing again is safe.
    virtual PushResult push_within(const std::string& session_id,
                                   const std::string& job_id,
                                   Priority priority,
                                   const QueueLimits& limits) = 0;
    // The next job to run, claimed for this node: first a job whose claim expired (oldest
    // deadline first, paused or not: it was running, and pausing holds queued jobs only),
    // else the next queued job by the fair rules, skipping paused sessions. Either kind takes
    // an operation number. Empty when nothing can run.
    virtual std::optional<QueuedJob> pop() = 0;
    // The job ended on this node (succeeded, failed or cancelled): it is never handed out
    // again. Does nothing when this node no longer holds the claim, so a late ack cannot
    // release the claim of the node that took the job over.
    virtual void ack(const QueuedJob& job) = 0;
    // The job still runs here: pushes the claim's deadline one timeout ahead. False when this
    // node no longer holds the claim (it was acked, or another node took it over after it
    // expired): the job then runs elsewhere too.
    virtual bool renew(const QueuedJob& job) = 0;
    // Asks the holder of the job's claim to stop it: cancel_requested() answers true for that
    // claim from now on, on whichever node holds it (also after a take-over). False when the
    // job is not claimed (queued, ended, or never pushed).
    virtual bool request_cancel(const std::string& session_id, const std::string& job_id) = 0;
    virtual bool cancel_requested(const QueuedJob& job) const = 0;
    virtual bool remove(const std::string& session_id, const std::string& job_id) = 0;
    // Jobs that would start before this one (0: next), or empty when it is not queued.
    virtual std::optional<int> position(const std::string& session_id,
                                        const std::string& job_id) const = 0;
    // Removes and returns the session's queued jobs, in the order they would have run.
    virtual std::vector<std::string> clear_session(const std::string& session_id) = 0;
    virtual void set_paused(const std::string& session_id, bool paused) = 0;
    virtual bool is_paused(const std::string& session_id) const = 0;

    virtual size_t size() const = 0;
    virtual size_t session_size(const std::string& session_id) const = 0;
};

}  // namespace kiln::scheduler
