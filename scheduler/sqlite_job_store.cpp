#include "scheduler/sqlite_job_store.h"

#include <sqlite3.h>

#include <cerrno>
#include <string>

#include "core/error.h"

namespace kiln::scheduler {

namespace {

// A full disk is its own error (the server answers 507 and the scheduler retries its
// records); SQLite reports it as SQLITE_FULL or as a write error whose errno is ENOSPC.
core::ErrorCode sqlite_error_code(sqlite3* db) {
    const int errno_value = sqlite3_system_errno(db);
    if ((sqlite3_errcode(db) & 0xff) == SQLITE_FULL || errno_value == ENOSPC ||
        errno_value == EDQUOT)
        return core::ErrorCode::NO_SPACE;
    return core::ErrorCode::IO;
}

const char* const schema = R"sql(
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, paused INTEGER NOT NULL DEFAULT 0,
    idle_ttl INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, session_id TEXT NOT NULL, seq INTEGER NOT NULL, model TEXT NOT NULL,
    params TEXT NOT NULL, tile INTEGER NOT NULL, priority INTEGER NOT NULL,
    status INTEGER NOT NULL, created_at INTEGER NOT NULL, started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL, attempts INTEGER NOT NULL, error_code TEXT,
    error_message TEXT, retry_of TEXT NOT NULL, idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL, input_width INTEGER NOT NULL, input_height INTEGER NOT NULL,
    update_seq INTEGER NOT NULL, progress_done INTEGER NOT NULL,
    progress_total INTEGER NOT NULL, task TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS jobs_by_session ON jobs (session_id, seq);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE TABLE IF NOT EXISTS outputs (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, width INTEGER NOT NULL,
    height INTEGER NOT NULL, content_type TEXT NOT NULL, etag TEXT NOT NULL,
    PRIMARY KEY (job_id, idx));
)sql";

const char* const job_columns =
    "id, session_id, seq, model, params, tile, priority, status, created_at, started_at, "
    "finished_at, attempts, error_code, error_message, retry_of, idempotency_key, "
    "request_hash, input_width, input_height, update_seq, progress_done, progress_total, task";

// One prepared statement; binds by position starting at 1.
class Statement {
  public:
    Statement(sqlite3* db, const std::string& sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK)
            fail("prepare");
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(const std::string& v) {
        check(sqlite3_bind_text(stmt_, next_++, v.c_str(), static_cast<int>(v.size()),
                                SQLITE_TRANSIENT));
        return *this;
    }
    Statement& bind(int64_t v) {
        check(sqlite3_bind_int64(stmt_, next_++, v));
        return *this;
    }
    Statement& bind_null() {
        check(sqlite3_bind_null(stmt_, next_++));
        return *this;
    }
    // True while a row is available.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW)
            return true;
        if (rc != SQLITE_DONE)
            fail("step");
        return false;
    }
    int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
    std::string text(int col) const {
        const auto* p = sqlite3_column_text(stmt_, col);
        return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
    }
    bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    int changes() const { return sqlite3_changes(db_); }

  private:
    void check(int rc) {
        if (rc != SQLITE_OK)
            fail("bind");
    }
    [[noreturn]] void fail(const char* what) const {
        throw core::Error(sqlite_error_code(db_),
                          std::string("sqlite ") + what + ": " + sqlite3_errmsg(db_));
    }

    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
    int next_ = 1;
};

Job read_job(const Statement& s) {
    Job j;
    j.id = s.text(0);
    j.session_id = s.text(1);
    j.seq = s.integer(2);
    j.model = s.text(3);
    j.params_json = s.text(4);
    j.tile = static_cast<int>(s.integer(5));
    j.priority = static_cast<Priority>(s.integer(6));
    j.status = static_cast<JobStatus>(s.integer(7));
    j.created_at = s.integer(8);
    j.started_at = s.integer(9);
    j.finished_at = s.integer(10);
    j.attempts = static_cast<int>(s.integer(11));
    if (!s.is_null(12))
        j.error = JobError{s.text(12), s.text(13)};
    j.retry_of = s.text(14);
    j.idempotency_key = s.text(15);
    j.request_hash = s.text(16);
    j.input_width = static_cast<int>(s.integer(17));
    j.input_height = static_cast<int>(s.integer(18));
    j.update_seq = s.integer(19);
    j.progress_done = static_cast<int>(s.integer(20));
    j.progress_total = static_cast<int>(s.integer(21));
    // Rows from before the task column: every generate job's params hold the seed it used, an
    // upscale job's only "tile".
    const auto task = parse_task_kind(s.text(22));
    j.task = task ? *task
                  : (j.params_json.find("\"seed\"") != std::string::npos ? TaskKind::GENERATE
                                                                         : TaskKind::UPSCALE);
    return j;
}

}  // namespace

SqliteJobStore::SqliteJobStore(const std::filesystem::path& file) {
    if (sqlite3_open(file.c_str(), &db_) != SQLITE_OK) {
        const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        throw core::Error(core::ErrorCode::IO, "cannot open " + file.string() + ": " + message);
    }
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec(schema);
    migrate();
    Statement s(db_, "SELECT COALESCE(MAX(seq), 0), COALESCE(MAX(update_seq), 0) FROM jobs");
    s.step();
    next_seq_ = s.integer(0) + 1;
    next_update_seq_ = s.integer(1) + 1;
}

SqliteJobStore::~SqliteJobStore() {
    sqlite3_close(db_);
}

void SqliteJobStore::rollback() noexcept {
    // SQLite may already have rolled the transaction back itself (it does on SQLITE_FULL);
    // a ROLLBACK then fails and would hide the error that matters (a full disk: 507).
    if (!sqlite3_get_autocommit(db_))
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void SqliteJobStore::exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string text = message ? message : "unknown";
        sqlite3_free(message);
        throw core::Error(sqlite_error_code(db_), "sqlite: " + text);
    }
}

// Databases made before idle expiry lack sessions.idle_ttl: their sessions keep a fixed
// expires_at (idle_ttl 0).
void SqliteJobStore::migrate() {
    Statement s(db_, "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = 'idle_ttl'");
    s.step();
    if (s.integer(0) == 0)
        exec("ALTER TABLE sessions ADD COLUMN idle_ttl INTEGER NOT NULL DEFAULT 0");
    Statement t(db_, "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'task'");
    t.step();
    if (t.integer(0) == 0)
        exec("ALTER TABLE jobs ADD COLUMN task TEXT NOT NULL DEFAULT ''");
}

void SqliteJobStore::create_session(const Session& session) {
    std::lock_guard lock(mutex_);
    Statement s(db_,
                "INSERT INTO sessions (id, token_hash, created_at, expires_at, paused, idle_ttl) "
                "VALUES (?, ?, ?, ?, ?, ?)");
    s.bind(session.id).bind(session.token_hash).bind(session.created_at);
    s.bind(session.expires_at).bind(int64_t{session.paused}).bind(session.idle_ttl_ms);
    s.step();
}

std::optional<Session> SqliteJobStore::find_session(const std::string& id) {
    std::lock_guard lock(mutex_);
    Statement s(db_,
                "SELECT id, token_hash, created_at, expires_at, paused, idle_ttl FROM sessions "
                "WHERE id = ?");
    s.bind(id);
    if (!s.step())
        return std::nullopt;
    return Session{s.text(0),    s.text(1),         s.integer(2),
                   s.integer(3), s.integer(4) != 0, s.integer(5)};
}

bool SqliteJobStore::touch_session(const std::string& id, int64_t now, int64_t expires_at) {
    std::lock_guard lock(mutex_);
    Statement s(db_,
                "UPDATE sessions SET expires_at = ? WHERE id = ? AND expires_at > ? AND "
                "expires_at < ?");
    s.bind(expires_at).bind(id).bind(now).bind(expires_at);
    s.step();
    return s.changes() > 0;
}

void SqliteJobStore::set_session_paused(const std::string& id, bool paused) {
    std::lock_guard lock(mutex_);
    Statement s(db_, "UPDATE sessions SET paused = ? WHERE id = ?");
    s.bind(int64_t{paused}).bind(id);
    s.step();
}

void SqliteJobStore::delete_session(const std::string& id) {
    std::lock_guard lock(mutex_);
    exec("BEGIN IMMEDIATE");
    try {
        Statement(db_,
                  "DELETE FROM outputs WHERE job_id IN (SELECT id FROM jobs WHERE "
                  "session_id = ?)")
            .bind(id)
            .step();
        Statement(db_, "DELETE FROM jobs WHERE session_id = ?").bind(id).step();
        Statement(db_, "DELETE FROM sessions WHERE id = ?").bind(id).step();
        exec("COMMIT");
    } catch (...) {
        rollback();
        throw;
    }
}

std::vector<std::string> SqliteJobStore::expired_sessions(int64_t now) {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT id FROM sessions WHERE expires_at <= ?");
    s.bind(now);
    std::vector<std::string> ids;
    while (s.step())
        ids.push_back(s.text(0));
    return ids;
}

void SqliteJobStore::insert_job(Job& job) {
    std::lock_guard lock(mutex_);
    insert_locked(job);
}

std::optional<Job> SqliteJobStore::insert_job_unless_key_held(Job& job) {
    std::lock_guard lock(mutex_);
    if (!job.idempotency_key.empty()) {
        if (auto holder = find_by_key_locked(job.session_id, job.idempotency_key))
            return holder;
    }
    insert_locked(job);
    return std::nullopt;
}

void SqliteJobStore::insert_locked(Job& job) {
    Statement s(
        db_, std::string("INSERT INTO jobs (") + job_columns +
                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    job.seq = next_seq_;
    job.update_seq = next_update_seq_;
    s.bind(job.id).bind(job.session_id).bind(job.seq).bind(job.model).bind(job.params_json);
    s.bind(int64_t{job.tile}).bind(int64_t{static_cast<int>(job.priority)});
    s.bind(int64_t{static_cast<int>(job.status)}).bind(job.created_at).bind(job.started_at);
    s.bind(job.finished_at).bind(int64_t{job.attempts});
    if (job.error)
        s.bind(job.error->code).bind(job.error->message);
    else
        s.bind_null().bind_null();
    s.bind(job.retry_of).bind(job.idempotency_key).bind(job.request_hash);
    s.bind(int64_t{job.input_width}).bind(int64_t{job.input_height}).bind(job.update_seq);
    s.bind(int64_t{job.progress_done}).bind(int64_t{job.progress_total});
    s.bind(std::string(task_kind_name(job.task)));
    s.step();
    ++next_seq_;
    ++next_update_seq_;
}

void SqliteJobStore::load_outputs(Job& job) {
    Statement s(db_,
                "SELECT idx, width, height, content_type, etag FROM outputs WHERE job_id = ? "
                "ORDER BY idx");
    s.bind(job.id);
    while (s.step()) {
        // The etag column holds the content digest; databases written before it moved out of
        // the scheduler hold it quoted, as the HTTP header was.
        std::string digest = s.text(4);
        if (digest.size() >= 2 && digest.front() == '"' && digest.back() == '"')
            digest = digest.substr(1, digest.size() - 2);
        job.outputs.push_back(JobOutput{static_cast<int>(s.integer(0)),
                                        static_cast<int>(s.integer(1)),
                                        static_cast<int>(s.integer(2)), s.text(3), digest});
    }
}

void SqliteJobStore::write_outputs(const Job& job) {
    Statement(db_, "DELETE FROM outputs WHERE job_id = ?").bind(job.id).step();
    for (const JobOutput& o : job.outputs) {
        Statement s(db_,
                    "INSERT INTO outputs (job_id, idx, width, height, content_type, etag) "
                    "VALUES (?, ?, ?, ?, ?, ?)");
        s.bind(job.id).bind(int64_t{o.index}).bind(int64_t{o.width}).bind(int64_t{o.height});
        s.bind(o.content_type).bind(o.digest);
        s.step();
    }
}

std::optional<Job> SqliteJobStore::find_job(const std::string& session_id, const std::string& id) {
    std::lock_guard lock(mutex_);
    Statement s(
        db_, std::string("SELECT ") + job_columns + " FROM jobs WHERE session_id = ? AND id = ?");
    s.bind(session_id).bind(id);
    if (!s.step())
        return std::nullopt;
    Job job = read_job(s);
    load_outputs(job);
    return job;
}

std::optional<Job> SqliteJobStore::find_job_by_idempotency_key(const std::string& session_id,
                                                               const std::string& key) {
    std::lock_guard lock(mutex_);
    return find_by_key_locked(session_id, key);
}

std::optional<Job> SqliteJobStore::find_by_key_locked(const std::string& session_id,
                                                      const std::string& key) {
    Statement s(db_, std::string("SELECT ") + job_columns +
                         " FROM jobs WHERE session_id = ? AND idempotency_key = ? "
                         "ORDER BY seq LIMIT 1");
    s.bind(session_id).bind(key);
    if (!s.step())
        return std::nullopt;
    Job job = read_job(s);
    load_outputs(job);
    return job;
}

bool SqliteJobStore::update_job(Job& job) {
    std::lock_guard lock(mutex_);
    exec("BEGIN IMMEDIATE");
    try {
        Statement s(
            db_,
            "UPDATE jobs SET status = ?, started_at = ?, finished_at = ?, attempts = ?, "
            "error_code = ?, error_message = ?, tile = ?, update_seq = ?, progress_done = ?, "
            "progress_total = ? "
            "WHERE session_id = ? AND id = ?");
        s.bind(int64_t{static_cast<int>(job.status)}).bind(job.started_at).bind(job.finished_at);
        s.bind(int64_t{job.attempts});
        if (job.error)
            s.bind(job.error->code).bind(job.error->message);
        else
            s.bind_null().bind_null();
        s.bind(int64_t{job.tile}).bind(next_update_seq_).bind(int64_t{job.progress_done});
        s.bind(int64_t{job.progress_total}).bind(job.session_id).bind(job.id);
        s.step();
        if (s.changes() == 0) {
            exec("ROLLBACK");
            return false;
        }
        write_outputs(job);
        exec("COMMIT");
    } catch (...) {
        rollback();
        throw;
    }
    job.update_seq = next_update_seq_++;
    return true;
}

bool SqliteJobStore::delete_job(const std::string& session_id, const std::string& id) {
    std::lock_guard lock(mutex_);
    Statement s(db_, "DELETE FROM jobs WHERE session_id = ? AND id = ?");
    s.bind(session_id).bind(id);
    s.step();
    if (s.changes() == 0)
        return false;
    Statement(db_, "DELETE FROM outputs WHERE job_id = ?").bind(id).step();
    return true;
}

std::vector<Job> SqliteJobStore::list_jobs(const std::string& session_id, const JobQuery& query) {
    std::lock_guard lock(mutex_);
    std::string sql =
        std::string("SELECT ") + job_columns + " FROM jobs WHERE session_id = ? AND update_seq > ?";
    if (query.status)
        sql += " AND status = ?";
    if (query.before_seq > 0)
        sql += " AND seq < ?";
    sql += query.oldest_change_first ? " ORDER BY update_seq ASC LIMIT ?"
                                     : " ORDER BY seq DESC LIMIT ?";
    Statement s(db_, sql);
    s.bind(session_id).bind(query.updated_since);
    if (query.status)
        s.bind(int64_t{static_cast<int>(*query.status)});
    if (query.before_seq > 0)
        s.bind(query.before_seq);
    s.bind(int64_t{query.limit});
    std::vector<Job> jobs;
    while (s.step())
        jobs.push_back(read_job(s));
    for (Job& job : jobs)
        load_outputs(job);
    return jobs;
}

std::vector<std::pair<std::string, std::string>> SqliteJobStore::finished_before(int64_t ms) {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT session_id, id FROM jobs WHERE finished_at > 0 AND finished_at < ?");
    s.bind(ms);
    std::vector<std::pair<std::string, std::string>> out;
    while (s.step())
        out.emplace_back(s.text(0), s.text(1));
    return out;
}

std::map<JobStatus, int64_t> SqliteJobStore::count_by_status() {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT status, COUNT(*) FROM jobs GROUP BY status");
    std::map<JobStatus, int64_t> counts;
    while (s.step())
        counts[static_cast<JobStatus>(s.integer(0))] = s.integer(1);
    return counts;
}

int64_t SqliteJobStore::last_update_seq() {
    std::lock_guard lock(mutex_);
    return next_update_seq_ - 1;
}

std::vector<Job> SqliteJobStore::unfinished_jobs() {
    std::lock_guard lock(mutex_);
    Statement s(db_, std::string("SELECT ") + job_columns +
                         " FROM jobs WHERE status IN (?, ?) ORDER BY seq");
    s.bind(int64_t{static_cast<int>(JobStatus::QUEUED)});
    s.bind(int64_t{static_cast<int>(JobStatus::RUNNING)});
    std::vector<Job> jobs;
    while (s.step())
        jobs.push_back(read_job(s));
    return jobs;
}

}  // namespace kiln::scheduler
