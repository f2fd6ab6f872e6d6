// JobStore on one SQLite database in WAL mode (the embedded default).
#pragma once

#include <filesystem>
#include <mutex>

#include "scheduler/job_store.h"

struct sqlite3;

namespace kiln::scheduler {

class SqliteJobStore final : public JobStore {
  public:
    // Creates the file and its tables when absent. Throws core::Error(IO).
    explicit SqliteJobStore(const std::filesystem::path& file);
    ~SqliteJobStore() override;
    SqliteJobStore(const SqliteJobStore&) = delete;
    SqliteJobStore& operator=(const SqliteJobStore&) = delete;

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
    void exec(const char* sql);
    void rollback() noexcept;  // of an open transaction, if SQLite has not ended it
    void migrate();
    void insert_locked(Job& job);
    std::optional<Job> find_by_key_locked(const std::string& session_id, const std::string& key);
    void load_outputs(Job& job);
    void write_outputs(const Job& job);

    std::mutex mutex_;
    sqlite3* db_ = nullptr;
    int64_t next_seq_ = 1;
    int64_t next_update_seq_ = 1;
};

}  // namespace kiln::scheduler
