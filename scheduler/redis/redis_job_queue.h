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
//   P:size         the number of queued jobs, so that size() is one GET.
// Each operation that touches more than one key is one Lua script: Redis runs a script
// atomically, so two nodes never pop the same job, the ring order holds across nodes and the
// op numbers of one queue strictly increase. Single-command operations (pause, sizes) are
// atomic as they are. The scripts derive session keys from the prefix, which a single Redis
// allows; Redis Cluster would need the prefix to be a hash tag such as "{kiln}".
//
// Not done yet: this class is the ordering only. A popped job is gone from Redis, so a node
// that dies after pop, or whose pop reply is lost with the connection, loses it; delivery to
// a node with a claim and a visibility timeout (e.g. a stream with a consumer group and
// XAUTOCLAIM) comes in a later slice. A second push of a job id already queued in the session
// is ignored (FairQueue would queue it twice; the Scheduler never does).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/job_queue.h"
#include "scheduler/redis/redis_client.h"

namespace kiln::scheduler {

class RedisJobQueue final : public JobQueue {
  public:
    // Connects at once: core::Error(IO) when Redis cannot be reached.
    RedisJobQueue(RedisAddress address, std::string key_prefix);

    uint64_t push(const std::string& session_id,
                  const std::string& job_id,
                  Priority priority) override;
    std::optional<QueuedJob> pop() override;
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

    const std::string op_key_;
    const std::string ring_key_;
    const std::string paused_key_;
    const std::string size_key_;
    const std::string session_key_prefix_;
    // const queries still send commands (and may reconnect).
    mutable RedisConnection connection_;
};

}  // namespace kiln::scheduler
