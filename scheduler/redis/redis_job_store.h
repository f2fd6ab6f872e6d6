// A JobStore in Redis, so that several kiln nodes share sessions and jobs (scheduler/job_store.h
// has the promises; SqliteJobStore is the reference for ordering and for what update_job
// writes). Every store object on the same address and key prefix is the same store.
//
// Keys, all under the prefix P; <s> is a session id, <id> a job id (both hex from ids.h, so
// neither holds ':'):
//   P:seq, P:update_seq      the counters that insert_job and update_job advance;
//   P:job:<s>:<id>           hash: record (record_codec's JSON, written by C++ only), seq,
//                            update_seq, status (its name), finished_at, idem (the
//                            idempotency key in hex, or empty). seq and update_seq are the
//                            scripts' numbers: those inside the record are not read;
//   P:jobs:<s>               sorted set id -> seq (newest first, before_seq);
//   P:changes:<s>            sorted set id -> update_seq (updated_since, oldest_change_first);
//   P:status:<s>:<status>    sorted set id -> seq of the session's jobs in that status;
//   P:idem:<s>:<key hex>     sorted set id -> seq of the jobs with that idempotency key: the
//                            lowest seq answers, as SQLite's ORDER BY seq LIMIT 1 does;
//   P:finished               sorted set "<s>:<id>" -> finished_at of jobs with finished_at > 0;
//   P:unfinished             sorted set "<s>:<id>" -> seq of queued and running jobs;
//   P:counts                 hash status name -> number of jobs (all sessions);
//   P:session:<s>            hash: token_hash, created_at, expires_at, paused, idle_ttl_ms;
//   P:expiry                 sorted set session id -> expires_at.
// The global members "<s>:<id>" are the job keys' tails, so a script reaches a job from them.
// Scores are doubles: sequence numbers and millisecond times are exact below 2^53.
//
// Each operation that changes more than one key is one Lua script, which Redis runs
// atomically, so nodes never see a job half indexed and the sequence numbers are unique across
// nodes. The scripts never decode the JSON (cjson would reformat numbers): they read the small
// hash fields. update_job writes what SQLite's UPDATE writes (status, started_at, finished_at,
// attempts, error, tile, progress, outputs) and keeps the rest as inserted: it reads the stored
// record first, which needs no lock across nodes since those fields never change after insert_job
// (a stored record that is not a job makes the update fail with BAD_FILE). list_jobs walks one
// index in the query's order (the status set or all jobs by seq descending, or the changes by
// update_seq ascending) and tests the other conditions on each job's hash fields, so a condition
// that the walked index does not serve (updated_since newest first; status or before_seq oldest
// change first) may scan every job of the session. delete_session's script runs over every job of
// the session. The scripts derive keys from the prefix, which a single Redis allows; Redis Cluster
// would need the prefix to be a hash tag such as "{kiln}".
//
// A lost connection makes RedisConnection send a script again (redis_client.h). The writes
// tolerate that: a second insert of a stored job leaves it as it is and returns its numbers,
// a second update assigns a newer update_seq; a delete sent twice reports false.
#pragma once

#include <mutex>
#include <string>

#include "scheduler/job_store.h"
#include "scheduler/redis/redis_client.h"

namespace kiln::scheduler {

class RedisJobStore final : public JobStore {
  public:
    // Connects at once: core::Error(UNAVAILABLE) when Redis cannot be reached. A stored record that
    // is not a job is core::Error(BAD_FILE) naming the job.
    RedisJobStore(RedisAddress address, std::string key_prefix);

    void create_session(const Session& session) override;
    std::optional<Session> find_session(const std::string& id) override;
    void set_session_paused(const std::string& id, bool paused) override;
    void delete_session(const std::string& id) override;
    std::vector<std::string> expired_sessions(int64_t now) override;
    bool touch_session(const std::string& id, int64_t now, int64_t expires_at) override;

    void insert_job(Job& job) override;
    std::optional<Job> insert_job_unless_key_held(Job& job) override;
    std::optional<Job> find_job(const std::string& session_id, const std::string& id) override;
    std::optional<Job> find_job_by_idempotency_key(const std::string& session_id,
                                                   const std::string& key) override;
    bool update_job(Job& job) override;
    bool delete_job(const std::string& session_id, const std::string& id) override;
    std::vector<Job> list_jobs(const std::string& session_id, const JobQuery& query) override;
    std::vector<std::pair<std::string, std::string>> finished_before(int64_t ms) override;
    std::map<JobStatus, int64_t> count_by_status() override;
    int64_t last_update_seq() override;
    std::vector<Job> unfinished_jobs() override;

  private:
    // The insert script; with unless_key_held, the id of the job holding job's idempotency key
    // when there is one (nothing inserted then).
    std::optional<std::string> insert(Job& job, bool unless_key_held);
    std::string prefixed(const std::string& tail) const;  // P:tail
    std::string session_key(const std::string& session_id) const;
    std::string job_key(const std::string& session_id, const std::string& id) const;
    // What every job script takes first (job_script_head in the .cpp).
    std::vector<std::string> job_script_keys(const std::string& session_id) const;
    std::vector<std::string> job_script_args(const std::string& session_id) const;

    const std::string prefix_;
    // One connection for all threads: RedisConnection is not thread-safe, and each call is
    // one round trip (two for update_job), so the lock is held briefly.
    std::mutex mutex_;
    RedisConnection connection_;
};

}  // namespace kiln::scheduler
