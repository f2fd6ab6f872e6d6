// Where sessions, jobs and their outputs' metadata live. Every job lookup is by
// (session, id): a job of another session is indistinguishable from one that does not exist.
// Implementations are thread-safe; a call returns after its change is committed. The promises
// are checked against every implementation by tests/scheduler/job_store_contract.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scheduler/job.h"

namespace kiln::scheduler {

struct JobQuery {
    std::optional<JobStatus> status;
    int limit = 20;
    int64_t before_seq = 0;            // cursor: only jobs with seq < before_seq (0: no cursor)
    int64_t updated_since = 0;         // only jobs with update_seq > updated_since (0: all)
    bool oldest_change_first = false;  // order by update_seq ascending (event streams)
};

class JobStore {
  public:
    virtual ~JobStore() = default;

    virtual void create_session(const Session& session) = 0;
    virtual std::optional<Session> find_session(const std::string& id) = 0;
    virtual void set_session_paused(const std::string& id, bool paused) = 0;
    // Removes the session, its jobs and their outputs' records.
    virtual void delete_session(const std::string& id) = 0;
    virtual std::vector<std::string> expired_sessions(int64_t now) = 0;
    // Moves an unexpired session's expires_at forward to `expires_at` (never back); false
    // when nothing moved: the session is gone, already expired at `now`, or already expires
    // at `expires_at` or later.
    virtual bool touch_session(const std::string& id, int64_t now, int64_t expires_at) = 0;

    // Assigns job.seq and job.update_seq.
    virtual void insert_job(Job& job) = 0;
    // insert_job, unless the job carries an idempotency key that a job of its session already
    // holds: then nothing is inserted and that job is returned. One atomic step, so that two
    // nodes submitting with one key make one job.
    virtual std::optional<Job> insert_job_unless_key_held(Job& job) = 0;
    virtual std::optional<Job> find_job(const std::string& session_id, const std::string& id) = 0;
    virtual std::optional<Job> find_job_by_idempotency_key(const std::string& session_id,
                                                           const std::string& key) = 0;
    // Writes status, times, attempts, error and outputs; assigns job.update_seq. False when
    // the job no longer exists (deleted meanwhile).
    virtual bool update_job(Job& job) = 0;
    virtual bool delete_job(const std::string& session_id, const std::string& id) = 0;
    // Newest first.
    virtual std::vector<Job> list_jobs(const std::string& session_id, const JobQuery& query) = 0;
    // (session, job) of finished jobs that finished before `ms` (retention).
    virtual std::vector<std::pair<std::string, std::string>> finished_before(int64_t ms) = 0;
    // Jobs per status, all sessions (metrics).
    virtual std::map<JobStatus, int64_t> count_by_status() = 0;
    // The highest update_seq assigned so far (0: none).
    virtual int64_t last_update_seq() = 0;
    // Queued and running jobs of every session in submission order (restart recovery).
    virtual std::vector<Job> unfinished_jobs() = 0;
};

}  // namespace kiln::scheduler
