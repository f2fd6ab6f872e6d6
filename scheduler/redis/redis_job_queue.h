// A JobQueue in Redis, so that several kiln nodes share one queue (scheduler/job_queue.h has
// the promises; it keeps FairQueue's behaviour exactly, including position()). Every queue
// object on the same address and key prefix is the same queue.
//
// Keys, all under the prefix P:
//   P:q:<session>  sorted set of the session's job ids, score rank * 2^40 + op (rank 0 HIGH,
//                  1 NORMAL, 2 LOW): priority first, then FIFO; exact in a double below 2^53;
//   P:ring         list of the sessions with queued jobs, next to serve at the head;
//   P:paused       set of paused sessions (kept while they have no jobs, as in FairQueue);
//   P:op           the operation counter that pushes and pops both advance;
//   P:size         the number of queued jobs, so that size() is one GET;
//   P:claims       sorted set of the popped jobs not yet acked, member
//                  "<byte length of session>:<session><job>" (the length makes it unambiguous
//                  whatever bytes the ids hold, so no separator has to be ruled out), score the
//                  claim's deadline in ms;
//   P:claim:<member>  hash: node (who holds it), delivery, session, job, and cancel (1 once a
//                  cancel was requested; it survives a take-over, and ack deletes the hash).
// Each operation that touches more than one key is one Lua script: Redis runs a script
// atomically, so two nodes never pop the same job, the ring order holds across nodes and the
// op numbers of one queue strictly increase. Single-command operations (pause, sizes) are
// atomic as they are. The scripts derive session and claim keys from the prefix, which a
// single Redis allows; Redis Cluster would need the prefix to be a hash tag such as "{kiln}".
//
// Claims: pop() claims the job for this node until now + the visibility timeout; renew()
// pushes that deadline on and ack() ends the claim, each only while this node holds it. pop()
// first takes over the claim with the oldest deadline if it has passed (delivery + 1, even in
// a paused session: that job was running), so a node killed mid-job loses no job. Deadlines
// come from the Redis server's clock (TIME in the script), never from the nodes' clocks.
// Claimed jobs are not queued: position(), size(), remove() and clear_session() ignore them.
//
// The Scheduler acks every job its worker ends and, on a shared queue, renews its running
// jobs' claims every third of the timeout (SchedulerOptions::shared_queue). A pop whose reply is
// lost with the connection (the script ran) leaves the job claimed by this node but never
// started: it comes back after the timeout, like a dead node's. A second push of a job id
// already queued in the session is ignored (FairQueue would queue it twice; the Scheduler
// never does).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/job_queue.h"
#include "scheduler/redis/redis_client.h"

namespace kiln::scheduler {

class RedisJobQueue final : public JobQueue {
  public:
    // node_id names this node in its claims and must differ between live nodes. Connects at
    // once: core::Error(UNAVAILABLE) when Redis cannot be reached; core::Error(INVALID_ARGUMENT)
    // for an empty node id or a timeout under 1 ms.
    RedisJobQueue(RedisAddress address,
                  std::string key_prefix,
                  std::string node_id,
                  std::chrono::milliseconds visibility_timeout = std::chrono::seconds(60));

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

    size_t size() const override;
    size_t session_size(const std::string& session_id) const override;

  private:
    std::string session_key(const std::string& session_id) const;
    static std::string claim_member(const std::string& session_id, const std::string& job_id);

    const std::string op_key_;
    const std::string ring_key_;
    const std::string paused_key_;
    const std::string size_key_;
    const std::string session_key_prefix_;
    const std::string claims_key_;
    const std::string claim_key_prefix_;
    const std::string node_id_;
    const std::string timeout_ms_;  // as the scripts take it
    // const queries still send commands (and may reconnect).
    mutable RedisConnection connection_;
};

}  // namespace kiln::scheduler
