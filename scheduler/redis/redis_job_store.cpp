#include "scheduler/redis/redis_job_store.h"

#include <charconv>
#include <system_error>
#include <utility>

#include "core/error.h"
#include "scheduler/redis/record_codec.h"

namespace kiln::scheduler {

namespace {

// What every job script starts with. KEYS: the session's jobs and changes sets, the finished
// and unfinished sets, the counts. ARGV: the session id, then the prefixes of its job keys,
// status sets and idempotency-key sets; the script's own arguments follow from ARGV[5].
const std::string job_script_head = R"lua(
local S = {jobs = KEYS[1], changes = KEYS[2], finished = KEYS[3], unfinished = KEYS[4],
           counts = KEYS[5], session = ARGV[1], job = ARGV[2], status = ARGV[3],
           idem = ARGV[4]}

-- A counter's value as the hashes keep it: redis.call would pass a Lua number on in a float
-- format that some Redis versions write with an exponent.
local function decimal(n)
    return string.format('%d', n)
end

-- Puts the job in the finished and unfinished sets as its state asks, and out of them if not.
local function place(id, seq, finished_at, unfinished)
    local member = S.session .. ':' .. id
    if tonumber(finished_at) > 0 then
        redis.call('ZADD', S.finished, finished_at, member)
    else
        redis.call('ZREM', S.finished, member)
    end
    if unfinished == '1' then
        redis.call('ZADD', S.unfinished, seq, member)
    else
        redis.call('ZREM', S.unfinished, member)
    end
end

-- Removes the job and its entry in every index; 0 when it is not stored.
local function drop(id)
    local job = S.job .. id
    local fields = redis.call('HMGET', job, 'status', 'idem')
    if not fields[1] then
        return 0
    end
    redis.call('DEL', job)
    redis.call('ZREM', S.jobs, id)
    redis.call('ZREM', S.changes, id)
    redis.call('ZREM', S.status .. fields[1], id)
    if fields[2] and fields[2] ~= '' then
        redis.call('ZREM', S.idem .. fields[2], id)
    end
    local member = S.session .. ':' .. id
    redis.call('ZREM', S.finished, member)
    redis.call('ZREM', S.unfinished, member)
    redis.call('HINCRBY', S.counts, fields[1], -1)
    return 1
end
)lua";

// KEYS[6..7]: seq, update_seq. ARGV[5..11]: id, record, status, finished_at, idempotency key
// hex, unfinished (1 or 0), refuse a held key (1 or 0). A job already stored is a replay after
// a lost reply: kept as it is. Returns {seq, update_seq}, or {holder id} when the key is held
// by another job and ARGV[11] is 1.
const std::string insert_script = job_script_head + R"lua(
local id = ARGV[5]
local job = S.job .. id
if redis.call('EXISTS', job) == 1 then
    return redis.call('HMGET', job, 'seq', 'update_seq')
end
if ARGV[11] == '1' and ARGV[9] ~= '' then
    local holder = redis.call('ZRANGE', S.idem .. ARGV[9], 0, 0)[1]
    if holder then
        return {holder}
    end
end
local seq = decimal(redis.call('INCR', KEYS[6]))
local update_seq = decimal(redis.call('INCR', KEYS[7]))
redis.call('HSET', job, 'record', ARGV[6], 'seq', seq, 'update_seq', update_seq,
           'status', ARGV[7], 'finished_at', ARGV[8], 'idem', ARGV[9])
redis.call('ZADD', S.jobs, seq, id)
redis.call('ZADD', S.changes, update_seq, id)
redis.call('ZADD', S.status .. ARGV[7], seq, id)
if ARGV[9] ~= '' then
    redis.call('ZADD', S.idem .. ARGV[9], seq, id)
end
place(id, seq, ARGV[8], ARGV[10])
redis.call('HINCRBY', S.counts, ARGV[7], 1)
return {seq, update_seq}
)lua";

// KEYS[6]: update_seq. ARGV[5..9]: id, record, status, finished_at, unfinished (1 or 0).
// The old status comes from the hash, so two nodes' updates keep the indexes right.
const std::string update_script = job_script_head + R"lua(
local id = ARGV[5]
local job = S.job .. id
local stored = redis.call('HMGET', job, 'status', 'seq')
if not stored[1] then
    return false
end
local update_seq = decimal(redis.call('INCR', KEYS[6]))
redis.call('HSET', job, 'record', ARGV[6], 'update_seq', update_seq, 'status', ARGV[7],
           'finished_at', ARGV[8])
redis.call('ZADD', S.changes, update_seq, id)
if stored[1] ~= ARGV[7] then
    redis.call('ZREM', S.status .. stored[1], id)
    redis.call('ZADD', S.status .. ARGV[7], stored[2], id)
    redis.call('HINCRBY', S.counts, stored[1], -1)
    redis.call('HINCRBY', S.counts, ARGV[7], 1)
end
place(id, stored[2], ARGV[8], ARGV[9])
return update_seq
)lua";

// ARGV[5]: id.
const std::string delete_job_script = job_script_head + R"lua(
return drop(ARGV[5])
)lua";

// KEYS[6..7]: the session hash, expiry.
const std::string delete_session_script = job_script_head + R"lua(
redis.call('DEL', KEYS[6])
redis.call('ZREM', KEYS[7], S.session)
for _, id in ipairs(redis.call('ZRANGE', S.jobs, 0, -1)) do
    drop(id)
end
return 1
)lua";

// Walks one index from an exclusive bound and keeps the jobs that pass the other filters, up
// to the limit (a negative one: none, as in SQLite). KEYS: the index. ARGV: job key prefix,
// ascending (1 or 0), first bound ("(score" or "+inf"), before_seq (0: none), updated_since,
// status name (empty: any), limit. Returns id, record, seq, update_seq per job.
const std::string list_script = R"lua(
local ascending = ARGV[2] == '1'
local bound = ARGV[3]
local before, since = tonumber(ARGV[4]), tonumber(ARGV[5])
local want, limit = ARGV[6], tonumber(ARGV[7])
local out, n = {}, 0
while n ~= limit do
    local batch
    if ascending then
        batch = redis.call('ZRANGEBYSCORE', KEYS[1], bound, '+inf', 'WITHSCORES', 'LIMIT', 0, 64)
    else
        batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], bound, '-inf', 'WITHSCORES', 'LIMIT', 0,
                           64)
    end
    if #batch == 0 then
        break
    end
    for i = 1, #batch, 2 do
        local id = batch[i]
        local job = redis.call('HMGET', ARGV[1] .. id, 'record', 'seq', 'update_seq', 'status')
        if job[1] and tonumber(job[3]) > since and (before <= 0 or tonumber(job[2]) < before)
                and (want == '' or job[4] == want) then
            out[#out + 1] = id
            out[#out + 1] = job[1]
            out[#out + 1] = job[2]
            out[#out + 1] = job[3]
            n = n + 1
            if n == limit then
                break
            end
        end
    end
    bound = '(' .. batch[#batch]
end
return out
)lua";

// KEYS: the unfinished set. ARGV: the job key prefix (P:job:). Returns member, record, seq,
// update_seq per job, in seq order.
const std::string unfinished_script = R"lua(
local out = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local job = redis.call('HMGET', ARGV[1] .. member, 'record', 'seq', 'update_seq')
    if job[1] then
        out[#out + 1] = member
        out[#out + 1] = job[1]
        out[#out + 1] = job[2]
        out[#out + 1] = job[3]
    end
end
return out
)lua";

// KEYS: the idempotency key's set. ARGV: the session's job key prefix. The job with the
// lowest seq: id, record, seq, update_seq.
const std::string find_by_key_script = R"lua(
local id = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if not id then
    return false
end
local job = redis.call('HMGET', ARGV[1] .. id, 'record', 'seq', 'update_seq')
if not job[1] then
    return false
end
return {id, job[1], job[2], job[3]}
)lua";

// KEYS: the session hash, expiry. ARGV: id, token_hash, created_at, expires_at, paused,
// idle_ttl_ms.
const std::string create_session_script = R"lua(
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'token_hash', ARGV[2], 'created_at', ARGV[3], 'expires_at',
           ARGV[4], 'paused', ARGV[5], 'idle_ttl_ms', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
)lua";

// KEYS: the session hash. ARGV: paused (1 or 0). A session that is gone stays gone.
const std::string set_paused_script = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('HSET', KEYS[1], 'paused', ARGV[1])
end
return 1
)lua";

// KEYS: the session hash, expiry. ARGV: id, now, expires_at. As SQLite's UPDATE ... WHERE
// expires_at > now AND expires_at < new.
const std::string touch_script = R"lua(
local current = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if not current or current <= tonumber(ARGV[2]) or current >= tonumber(ARGV[3]) then
    return 0
end
redis.call('HSET', KEYS[1], 'expires_at', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
)lua";

[[noreturn]] void corrupt(const std::string& what, const std::string& why) {
    throw core::Error(core::ErrorCode::BAD_FILE, "redis job store: " + what + ": " + why);
}

// A number the store wrote: an integer reply, or a hash field's decimal text.
int64_t stored_number(const RedisReply& reply, const std::string& what) {
    if (reply.kind == RedisReply::Kind::INTEGER)
        return reply.integer;
    if (reply.kind != RedisReply::Kind::STRING)
        corrupt(what, "a number is missing");
    const std::string& text = reply.str;
    int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size())
        corrupt(what, "\"" + text + "\" is not a number");
    return value;
}

// `name` ("<session>:<id>") says which job in errors.
Job decode_record(const std::string& name, const RedisReply& record) {
    if (record.kind != RedisReply::Kind::STRING)
        corrupt("job " + name, "no record");
    try {
        return decode_job(record.str);
    } catch (const core::Error& e) {
        corrupt("job " + name, e.what());
    }
}

// A job from its record and the hash's numbers.
Job read_job(const std::string& name,
             const RedisReply& record,
             const RedisReply& seq,
             const RedisReply& update_seq) {
    Job job = decode_record(name, record);
    job.seq = stored_number(seq, "job " + name);
    job.update_seq = stored_number(update_seq, "job " + name);
    return job;
}

// Replies of id, record, seq, update_seq per job; `session` + id names a job (the unfinished
// set's members are whole names).
std::vector<Job> read_jobs(const std::string& session, const RedisReply& reply) {
    if (reply.elements.size() % 4 != 0)
        throw core::Error(core::ErrorCode::INTERNAL, "redis job store: malformed job list");
    std::vector<Job> jobs;
    jobs.reserve(reply.elements.size() / 4);
    for (size_t i = 0; i < reply.elements.size(); i += 4) {
        const auto& e = reply.elements;
        jobs.push_back(read_job(session + e[i].as_string(), e[i + 1], e[i + 2], e[i + 3]));
    }
    return jobs;
}

bool is_unfinished(JobStatus status) {
    return status == JobStatus::QUEUED || status == JobStatus::RUNNING;
}

// A score bound that excludes `score` (ZRANGEBYSCORE's "(").
std::string exclusive(int64_t score) {
    std::string bound = "(";
    bound += std::to_string(score);
    return bound;
}

std::string flag(bool value) {
    return value ? "1" : "0";
}

}  // namespace

RedisJobStore::RedisJobStore(RedisAddress address, std::string key_prefix)
    : prefix_(std::move(key_prefix)), connection_(std::move(address)) {}

std::string RedisJobStore::prefixed(const std::string& tail) const {
    return prefix_ + ":" + tail;
}

std::string RedisJobStore::session_key(const std::string& session_id) const {
    return prefixed("session:" + session_id);
}

std::string RedisJobStore::job_key(const std::string& session_id, const std::string& id) const {
    return prefixed("job:" + session_id + ":" + id);
}

std::vector<std::string> RedisJobStore::job_script_keys(const std::string& session_id) const {
    return {prefixed("jobs:" + session_id), prefixed("changes:" + session_id), prefixed("finished"),
            prefixed("unfinished"), prefixed("counts")};
}

std::vector<std::string> RedisJobStore::job_script_args(const std::string& session_id) const {
    return {session_id, prefixed("job:" + session_id + ":"), prefixed("status:" + session_id + ":"),
            prefixed("idem:" + session_id + ":")};
}

void RedisJobStore::create_session(const Session& session) {
    std::lock_guard lock(mutex_);
    connection_.eval(create_session_script, {session_key(session.id), prefixed("expiry")},
                     {session.id, session.token_hash, std::to_string(session.created_at),
                      std::to_string(session.expires_at), flag(session.paused),
                      std::to_string(session.idle_ttl_ms)});
}

std::optional<Session> RedisJobStore::find_session(const std::string& id) {
    std::lock_guard lock(mutex_);
    const RedisReply reply =
        connection_.command({"HMGET", session_key(id), "token_hash", "created_at", "expires_at",
                             "paused", "idle_ttl_ms"});
    const auto& f = reply.elements;
    if (f.size() != 5 || f[0].is_nil())
        return std::nullopt;
    const std::string what = "session " + id;
    return Session{id,
                   f[0].as_string(),
                   stored_number(f[1], what),
                   stored_number(f[2], what),
                   stored_number(f[3], what) != 0,
                   stored_number(f[4], what)};
}

void RedisJobStore::set_session_paused(const std::string& id, bool paused) {
    std::lock_guard lock(mutex_);
    connection_.eval(set_paused_script, {session_key(id)}, {flag(paused)});
}

void RedisJobStore::delete_session(const std::string& id) {
    std::vector<std::string> keys = job_script_keys(id);
    keys.push_back(session_key(id));
    keys.push_back(prefixed("expiry"));
    std::lock_guard lock(mutex_);
    connection_.eval(delete_session_script, keys, job_script_args(id));
}

std::vector<std::string> RedisJobStore::expired_sessions(int64_t now) {
    std::lock_guard lock(mutex_);
    const RedisReply reply =
        connection_.command({"ZRANGEBYSCORE", prefixed("expiry"), "-inf", std::to_string(now)});
    std::vector<std::string> ids;
    ids.reserve(reply.elements.size());
    for (const RedisReply& element : reply.elements)
        ids.push_back(element.as_string());
    return ids;
}

bool RedisJobStore::touch_session(const std::string& id, int64_t now, int64_t expires_at) {
    std::lock_guard lock(mutex_);
    return connection_
               .eval(touch_script, {session_key(id), prefixed("expiry")},
                     {id, std::to_string(now), std::to_string(expires_at)})
               .as_integer() == 1;
}

void RedisJobStore::insert_job(Job& job) {
    insert(job, false);
}

std::optional<Job> RedisJobStore::insert_job_unless_key_held(Job& job) {
    // The holder may be deleted between the script's answer and its read: then try again.
    for (int attempt = 0; attempt < 3; ++attempt) {
        const std::optional<std::string> holder = insert(job, true);
        if (!holder)
            return std::nullopt;
        if (auto found = find_job(job.session_id, *holder))
            return found;
    }
    throw core::Error(core::ErrorCode::INTERNAL,
                      "redis job store: the idempotency key's job kept vanishing");
}

std::optional<std::string> RedisJobStore::insert(Job& job, bool unless_key_held) {
    std::vector<std::string> keys = job_script_keys(job.session_id);
    keys.push_back(prefixed("seq"));
    keys.push_back(prefixed("update_seq"));
    std::vector<std::string> args = job_script_args(job.session_id);
    args.insert(args.end(),
                {job.id, encode_job(job), std::string(job_status_name(job.status)),
                 std::to_string(job.finished_at), idempotency_key_hex(job.idempotency_key),
                 flag(is_unfinished(job.status)), flag(unless_key_held)});
    std::lock_guard lock(mutex_);
    const RedisReply reply = connection_.eval(insert_script, keys, args);
    if (unless_key_held && reply.elements.size() == 1)
        return reply.elements[0].as_string();
    if (reply.elements.size() != 2)
        throw core::Error(core::ErrorCode::INTERNAL, "redis job store: malformed insert reply");
    const std::string what = "job " + job.session_id + ":" + job.id;
    job.seq = stored_number(reply.elements[0], what);
    job.update_seq = stored_number(reply.elements[1], what);
    return std::nullopt;
}

std::optional<Job> RedisJobStore::find_job(const std::string& session_id, const std::string& id) {
    std::lock_guard lock(mutex_);
    const RedisReply reply =
        connection_.command({"HMGET", job_key(session_id, id), "record", "seq", "update_seq"});
    const auto& f = reply.elements;
    if (f.size() != 3 || f[0].is_nil())
        return std::nullopt;
    return read_job(session_id + ":" + id, f[0], f[1], f[2]);
}

std::optional<Job> RedisJobStore::find_job_by_idempotency_key(const std::string& session_id,
                                                              const std::string& key) {
    std::lock_guard lock(mutex_);
    const RedisReply reply = connection_.eval(
        find_by_key_script, {prefixed("idem:" + session_id + ":" + idempotency_key_hex(key))},
        {prefixed("job:" + session_id + ":")});
    if (reply.is_nil())
        return std::nullopt;
    const auto& f = reply.elements;
    if (f.size() != 4)
        throw core::Error(core::ErrorCode::INTERNAL, "redis job store: malformed job reply");
    return read_job(session_id + ":" + f[0].as_string(), f[1], f[2], f[3]);
}

bool RedisJobStore::update_job(Job& job) {
    const std::string name = job.session_id + ":" + job.id;
    std::lock_guard lock(mutex_);
    const RedisReply record =
        connection_.command({"HGET", job_key(job.session_id, job.id), "record"});
    if (record.is_nil())
        return false;
    // What SQLite's UPDATE writes; the rest stays as inserted.
    Job stored = decode_record(name, record);
    stored.status = job.status;
    stored.started_at = job.started_at;
    stored.finished_at = job.finished_at;
    stored.attempts = job.attempts;
    stored.error = job.error;
    stored.tile = job.tile;
    stored.progress_done = job.progress_done;
    stored.progress_total = job.progress_total;
    stored.outputs = job.outputs;

    std::vector<std::string> keys = job_script_keys(job.session_id);
    keys.push_back(prefixed("update_seq"));
    std::vector<std::string> args = job_script_args(job.session_id);
    args.insert(args.end(), {job.id, encode_job(stored), std::string(job_status_name(job.status)),
                             std::to_string(job.finished_at), flag(is_unfinished(job.status))});
    const RedisReply reply = connection_.eval(update_script, keys, args);
    if (reply.is_nil())
        return false;  // deleted meanwhile
    job.update_seq = stored_number(reply, "job " + name);
    return true;
}

bool RedisJobStore::delete_job(const std::string& session_id, const std::string& id) {
    std::vector<std::string> args = job_script_args(session_id);
    args.push_back(id);
    std::lock_guard lock(mutex_);
    return connection_.eval(delete_job_script, job_script_keys(session_id), args).as_integer() == 1;
}

std::vector<Job> RedisJobStore::list_jobs(const std::string& session_id, const JobQuery& query) {
    std::string index;
    std::string bound;
    if (query.oldest_change_first) {
        index = prefixed("changes:" + session_id);
        bound = exclusive(query.updated_since);
    } else {
        index = query.status ? prefixed("status:" + session_id + ":" +
                                        std::string(job_status_name(*query.status)))
                             : prefixed("jobs:" + session_id);
        bound = query.before_seq > 0 ? exclusive(query.before_seq) : "+inf";
    }
    const std::string status = query.status ? std::string(job_status_name(*query.status)) : "";
    std::lock_guard lock(mutex_);
    return read_jobs(session_id + ":", connection_.eval(list_script, {index},
                                                        {prefixed("job:" + session_id + ":"),
                                                         flag(query.oldest_change_first), bound,
                                                         std::to_string(query.before_seq),
                                                         std::to_string(query.updated_since),
                                                         status, std::to_string(query.limit)}));
}

std::vector<std::pair<std::string, std::string>> RedisJobStore::finished_before(int64_t ms) {
    std::lock_guard lock(mutex_);
    const RedisReply reply =
        connection_.command({"ZRANGEBYSCORE", prefixed("finished"), "-inf", exclusive(ms)});
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(reply.elements.size());
    for (const RedisReply& element : reply.elements) {
        const std::string& member = element.as_string();
        const size_t colon = member.find(':');
        if (colon == std::string::npos)
            corrupt(prefixed("finished"), "member \"" + member + "\" is not session:job");
        out.emplace_back(member.substr(0, colon), member.substr(colon + 1));
    }
    return out;
}

std::map<JobStatus, int64_t> RedisJobStore::count_by_status() {
    std::lock_guard lock(mutex_);
    const RedisReply reply = connection_.command({"HGETALL", prefixed("counts")});
    std::map<JobStatus, int64_t> counts;
    for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
        const std::string& name = reply.elements[i].as_string();
        const auto status = parse_job_status(name);
        if (!status)
            corrupt(prefixed("counts"), "unknown status \"" + name + "\"");
        const int64_t count = stored_number(reply.elements[i + 1], prefixed("counts"));
        if (count > 0)  // as SQLite's GROUP BY: only statuses some job has
            counts[*status] = count;
    }
    return counts;
}

int64_t RedisJobStore::last_update_seq() {
    std::lock_guard lock(mutex_);
    const RedisReply reply = connection_.command({"GET", prefixed("update_seq")});
    return reply.is_nil() ? 0 : stored_number(reply, prefixed("update_seq"));
}

std::vector<Job> RedisJobStore::unfinished_jobs() {
    std::lock_guard lock(mutex_);
    return read_jobs(
        "", connection_.eval(unfinished_script, {prefixed("unfinished")}, {prefixed("job:")}));
}

}  // namespace kiln::scheduler
