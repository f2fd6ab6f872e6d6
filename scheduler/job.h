// A job, its session and its outputs as the stores keep them. Times are Unix milliseconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::scheduler {

enum class JobStatus { QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED };
// What kind of job it is: the task of its model (scheduler/task.h).
enum class TaskKind { UPSCALE, GENERATE };
enum class Priority { HIGH = 0, NORMAL = 1, LOW = 2 };

std::string_view job_status_name(JobStatus status);
std::optional<JobStatus> parse_job_status(std::string_view text);
std::string_view priority_name(Priority priority);
std::string_view task_kind_name(TaskKind kind);  // "upscale", "generate"
std::optional<TaskKind> parse_task_kind(std::string_view name);
std::optional<Priority> parse_priority(std::string_view text);
bool is_final(JobStatus status);

int64_t now_ms();

struct Session {
    std::string id;
    std::string token_hash;  // SHA-256 hex of the token; the token itself is never stored
    int64_t created_at = 0;
    int64_t expires_at = 0;
    bool paused = false;  // the session's queue is held (POST /v1/queue/pause)
    // Idle expiry: each use moves expires_at to (use + idle_ttl_ms); 0 keeps expires_at fixed.
    int64_t idle_ttl_ms = 0;
};

struct JobOutput {
    int index = 0;
    int width = 0, height = 0;
    std::string content_type = "image/png";
    std::string digest;  // the first 32 hex digits of the bytes' SHA-256 (the ETag's value)
};

struct JobError {
    std::string code;  // snake_case, e.g. "out_of_memory", "interrupted"
    std::string message;
};

struct Job {
    std::string id;
    std::string session_id;
    int64_t seq = 0;  // submission order, assigned by the store
    std::string model;
    TaskKind task = TaskKind::UPSCALE;  // its model's task when it was admitted
    std::string params_json = "{}";     // validated params as the task runs them
    int tile = -1;                      // -1: from the memory budget
    Priority priority = Priority::NORMAL;
    JobStatus status = JobStatus::QUEUED;
    int64_t created_at = 0, started_at = 0, finished_at = 0;  // 0: not yet
    int attempts = 0;                                         // times it started running
    int progress_done = 0, progress_total = 0;                // tiles
    std::optional<JobError> error;
    std::string retry_of;
    std::string idempotency_key;
    std::string request_hash;  // SHA-256 of the request, for Idempotency-Key checks
    int input_width = 0, input_height = 0;
    int64_t update_seq = 0;  // store-wide change counter (GET /v1/jobs?updated_since=)
    std::vector<JobOutput> outputs;
    int position = -1;  // while queued: jobs that start before it (live, never stored)
};

}  // namespace kiln::scheduler
