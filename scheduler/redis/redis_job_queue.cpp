#include "scheduler/redis/redis_job_queue.h"

#include <charconv>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace kiln::scheduler {

namespace {

// Queues the job in its session and the session in the ring; returns the op number. KEYS:
// op, ring, size, session queue.
const std::string push_job_lua = R"lua(
local function push_job(session, job, rank)
    local op = redis.call('INCR', KEYS[1])
    if redis.call('EXISTS', KEYS[4]) == 0 then
        redis.call('RPUSH', KEYS[2], session)
    end
    -- %.0f: Lua's default number format keeps only 14 digits.
    local score = string.format('%.0f', tonumber(rank) * 1099511627776 + op)
    redis.call('INCRBY', KEYS[3], redis.call('ZADD', KEYS[4], 'NX', score, job))
    return op
end
)lua";

// KEYS: op, ring, size, session queue. ARGV: session, job, rank.
const std::string push_script = push_job_lua + R"lua(
return push_job(ARGV[1], ARGV[2], ARGV[3])
)lua";

// KEYS: as push, then the job's claim. ARGV: session, job, rank, max queued, max per session
// (0: none). Returns {outcome, op}: 0 pushed, 1 the queue is full, 2 the session's queue is
// full, 3 already queued (a replay after a lost reply) or claimed (handed out, running or
// about to), left as it is.
const std::string push_within_script = push_job_lua + R"lua(
if redis.call('ZSCORE', KEYS[4], ARGV[2]) or redis.call('EXISTS', KEYS[5]) == 1 then
    return {3, redis.call('INCR', KEYS[1])}
end
local max_queued = tonumber(ARGV[4])
if max_queued > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= max_queued then
    return {1, 0}
end
local max_session = tonumber(ARGV[5])
if max_session > 0 and redis.call('ZCARD', KEYS[4]) >= max_session then
    return {2, 0}
end
return {0, push_job(ARGV[1], ARGV[2], ARGV[3])}
)lua";

// KEYS: claim. Marks a claimed job's cancel request; 0 when it is not claimed.
const std::string request_cancel_script = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
end
redis.call('HSET', KEYS[1], 'cancel', 1)
return 1
)lua";

// Milliseconds on the server's clock, so that nodes with skewed clocks agree on deadlines.
// %.0f: Lua's default number format keeps only 14 digits.
const std::string deadline_after_lua = R"lua(
local function deadline_after(ms)
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    return now, string.format('%.0f', now + tonumber(ms))
end
)lua";

// An expired claim first, else the fair pop, claiming the job for this node either way.
// KEYS: op, ring, paused, size, claims. ARGV: session key prefix, claim key prefix, node,
// timeout in ms. Returns {session, job, op, delivery} or nil.
const std::string pop_script = deadline_after_lua + R"lua(
local now, deadline = deadline_after(ARGV[4])
local oldest = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
if oldest[1] and tonumber(oldest[2]) <= now then
    local claim = ARGV[2] .. oldest[1]
    local fields = redis.call('HMGET', claim, 'session', 'job')
    local delivery = redis.call('HINCRBY', claim, 'delivery', 1)
    redis.call('HSET', claim, 'node', ARGV[3])
    redis.call('ZADD', KEYS[5], deadline, oldest[1])
    return {fields[1], fields[2], redis.call('INCR', KEYS[1]), delivery}
end
for _, session in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    if redis.call('SISMEMBER', KEYS[3], session) == 0 then
        local queue = ARGV[1] .. session
        local popped = redis.call('ZPOPMIN', queue)
        if popped[1] then
            local op = redis.call('INCR', KEYS[1])
            redis.call('DECR', KEYS[4])
            redis.call('LREM', KEYS[2], 1, session)
            if redis.call('EXISTS', queue) == 1 then
                redis.call('RPUSH', KEYS[2], session)
            end
            local member = string.len(session) .. ':' .. session .. popped[1]
            redis.call('ZADD', KEYS[5], deadline, member)
            redis.call('HSET', ARGV[2] .. member, 'node', ARGV[3], 'delivery', 1,
                       'session', session, 'job', popped[1])
            return {session, popped[1], op, 1}
        end
    end
end
return false
)lua";

// KEYS: claims, claim. ARGV: member, node.
const std::string ack_script = R"lua(
if redis.call('HGET', KEYS[2], 'node') ~= ARGV[2] then
    return 0
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
)lua";

// KEYS: claims, claim. ARGV: member, node, timeout in ms.
const std::string renew_script = deadline_after_lua + R"lua(
if redis.call('HGET', KEYS[2], 'node') ~= ARGV[2] then
    return 0
end
local _, deadline = deadline_after(ARGV[3])
redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[1])
return 1
)lua";

// KEYS: ring, size, session queue. ARGV: session, job.
const std::string remove_script = R"lua(
if redis.call('ZREM', KEYS[3], ARGV[2]) == 0 then
    return 0
end
redis.call('DECR', KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('LREM', KEYS[1], 0, ARGV[1])
end
return 1
)lua";

// FairQueue::position's round-robin count: each session ahead in the ring serves up to k + 1
// jobs before this one, each behind it up to k. KEYS: ring, paused, session queue.
// ARGV: session key prefix, session, job.
const std::string position_script = R"lua(
local k = redis.call('ZRANK', KEYS[3], ARGV[3])
if not k then
    return false
end
local ahead = k
local before = 1
for _, other in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
    if other == ARGV[2] then
        before = 0
    elseif redis.call('SISMEMBER', KEYS[2], other) == 0 then
        ahead = ahead + math.min(redis.call('ZCARD', ARGV[1] .. other), k + before)
    end
end
return ahead
)lua";

// KEYS: ring, size, session queue. ARGV: session.
const std::string clear_script = R"lua(
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
if #ids > 0 then
    redis.call('DEL', KEYS[3])
    redis.call('DECRBY', KEYS[2], #ids)
    redis.call('LREM', KEYS[1], 0, ARGV[1])
end
return ids
)lua";

size_t to_size(int64_t value) {
    if (value < 0)
        throw core::Error(core::ErrorCode::INTERNAL,
                          "redis job queue: negative count " + std::to_string(value));
    return static_cast<size_t>(value);
}

}  // namespace

RedisJobQueue::RedisJobQueue(RedisAddress address,
                             std::string key_prefix,
                             std::string node_id,
                             std::chrono::milliseconds visibility_timeout)
    : op_key_(key_prefix + ":op"),
      ring_key_(key_prefix + ":ring"),
      paused_key_(key_prefix + ":paused"),
      size_key_(key_prefix + ":size"),
      session_key_prefix_(key_prefix + ":q:"),
      claims_key_(key_prefix + ":claims"),
      claim_key_prefix_(key_prefix + ":claim:"),
      node_id_(std::move(node_id)),
      timeout_ms_(std::to_string(visibility_timeout.count())),
      connection_(std::move(address)) {
    if (node_id_.empty())
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "redis job queue: empty node id");
    if (visibility_timeout.count() < 1)
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "redis job queue: visibility timeout under 1 ms");
}

std::string RedisJobQueue::session_key(const std::string& session_id) const {
    return session_key_prefix_ + session_id;
}

// The pop script's member: "<byte length of session>:<session><job>".
std::string RedisJobQueue::claim_member(const std::string& session_id, const std::string& job_id) {
    std::string member = std::to_string(session_id.size());
    member += ':';
    member += session_id;
    member += job_id;
    return member;
}

uint64_t RedisJobQueue::push(const std::string& session_id,
                             const std::string& job_id,
                             Priority priority) {
    const int64_t op =
        connection_
            .eval(push_script, {op_key_, ring_key_, size_key_, session_key(session_id)},
                  {session_id, job_id, std::to_string(static_cast<int>(priority))})
            .as_integer();
    return static_cast<uint64_t>(op);
}

PushResult RedisJobQueue::push_within(const std::string& session_id,
                                      const std::string& job_id,
                                      Priority priority,
                                      const QueueLimits& limits) {
    const RedisReply reply = connection_.eval(
        push_within_script,
        {op_key_, ring_key_, size_key_, session_key(session_id),
         claim_key_prefix_ + claim_member(session_id, job_id)},
        {session_id, job_id, std::to_string(static_cast<int>(priority)),
         std::to_string(limits.max_queued), std::to_string(limits.max_queued_per_session)});
    if (reply.elements.size() != 2)
        throw core::Error(core::ErrorCode::INTERNAL, "redis job queue: malformed push reply");
    const int64_t op = reply.elements[1].as_integer();
    switch (reply.elements[0].as_integer()) {
        case 0:
            return {PushOutcome::PUSHED, static_cast<uint64_t>(op)};
        case 1:
            return {PushOutcome::QUEUE_FULL, 0};
        case 2:
            return {PushOutcome::SESSION_QUEUE_FULL, 0};
        case 3:
            return {PushOutcome::ALREADY_THERE, static_cast<uint64_t>(op)};
        default:
            throw core::Error(core::ErrorCode::INTERNAL, "redis job queue: malformed push reply");
    }
}

std::optional<QueuedJob> RedisJobQueue::pop() {
    const RedisReply reply =
        connection_.eval(pop_script, {op_key_, ring_key_, paused_key_, size_key_, claims_key_},
                         {session_key_prefix_, claim_key_prefix_, node_id_, timeout_ms_});
    if (reply.is_nil())
        return std::nullopt;
    if (reply.elements.size() != 4)
        throw core::Error(core::ErrorCode::INTERNAL, "redis job queue: malformed pop reply");
    return QueuedJob{reply.elements[0].as_string(), reply.elements[1].as_string(),
                     static_cast<uint64_t>(reply.elements[2].as_integer()),
                     static_cast<int>(reply.elements[3].as_integer())};
}

void RedisJobQueue::ack(const QueuedJob& job) {
    const std::string member = claim_member(job.session_id, job.job_id);
    connection_.eval(ack_script, {claims_key_, claim_key_prefix_ + member}, {member, node_id_});
}

bool RedisJobQueue::renew(const QueuedJob& job) {
    const std::string member = claim_member(job.session_id, job.job_id);
    return connection_
               .eval(renew_script, {claims_key_, claim_key_prefix_ + member},
                     {member, node_id_, timeout_ms_})
               .as_integer() == 1;
}

bool RedisJobQueue::request_cancel(const std::string& session_id, const std::string& job_id) {
    const std::string member = claim_member(session_id, job_id);
    return connection_.eval(request_cancel_script, {claim_key_prefix_ + member}, {}).as_integer() ==
           1;
}

bool RedisJobQueue::cancel_requested(const QueuedJob& job) const {
    const RedisReply reply = connection_.command(
        {"HGET", claim_key_prefix_ + claim_member(job.session_id, job.job_id), "cancel"});
    return !reply.is_nil() && reply.as_string() == "1";
}

bool RedisJobQueue::remove(const std::string& session_id, const std::string& job_id) {
    return connection_
               .eval(remove_script, {ring_key_, size_key_, session_key(session_id)},
                     {session_id, job_id})
               .as_integer() == 1;
}

std::optional<int> RedisJobQueue::position(const std::string& session_id,
                                           const std::string& job_id) const {
    const RedisReply reply =
        connection_.eval(position_script, {ring_key_, paused_key_, session_key(session_id)},
                         {session_key_prefix_, session_id, job_id});
    if (reply.is_nil())
        return std::nullopt;
    return static_cast<int>(reply.as_integer());
}

std::vector<std::string> RedisJobQueue::clear_session(const std::string& session_id) {
    const RedisReply reply = connection_.eval(
        clear_script, {ring_key_, size_key_, session_key(session_id)}, {session_id});
    std::vector<std::string> ids;
    ids.reserve(reply.elements.size());
    for (const RedisReply& element : reply.elements)
        ids.push_back(element.as_string());
    return ids;
}

void RedisJobQueue::set_paused(const std::string& session_id, bool paused) {
    connection_.command({paused ? "SADD" : "SREM", paused_key_, session_id});
}

bool RedisJobQueue::is_paused(const std::string& session_id) const {
    return connection_.command({"SISMEMBER", paused_key_, session_id}).as_integer() == 1;
}

size_t RedisJobQueue::size() const {
    const RedisReply reply = connection_.command({"GET", size_key_});
    if (reply.is_nil())
        return 0;
    const std::string& text = reply.as_string();
    int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size())
        throw core::Error(core::ErrorCode::INTERNAL,
                          "redis job queue: " + size_key_ + " holds \"" + text + "\"");
    return to_size(value);
}

size_t RedisJobQueue::session_size(const std::string& session_id) const {
    return to_size(connection_.command({"ZCARD", session_key(session_id)}).as_integer());
}

}  // namespace kiln::scheduler
