#include "scheduler/job.h"

#include <array>
#include <chrono>

namespace kiln::scheduler {

namespace {

constexpr std::array<std::string_view, 5> status_names = {"queued", "running", "succeeded",
                                                          "failed", "cancelled"};
constexpr std::array<std::string_view, 3> priority_names = {"high", "normal", "low"};

}  // namespace

std::string_view job_status_name(JobStatus status) {
    return status_names[static_cast<size_t>(status)];
}

std::optional<JobStatus> parse_job_status(std::string_view text) {
    for (size_t i = 0; i < status_names.size(); ++i) {
        if (status_names[i] == text)
            return static_cast<JobStatus>(i);
    }
    return std::nullopt;
}

std::string_view task_kind_name(TaskKind kind) {
    switch (kind) {
        case TaskKind::UPSCALE:
            return "upscale";
        case TaskKind::GENERATE:
            return "generate";
    }
    return "unknown";
}

std::optional<TaskKind> parse_task_kind(std::string_view name) {
    for (TaskKind kind : {TaskKind::UPSCALE, TaskKind::GENERATE}) {
        if (task_kind_name(kind) == name)
            return kind;
    }
    return std::nullopt;
}

std::string_view priority_name(Priority priority) {
    return priority_names[static_cast<size_t>(priority)];
}

std::optional<Priority> parse_priority(std::string_view text) {
    for (size_t i = 0; i < priority_names.size(); ++i) {
        if (priority_names[i] == text)
            return static_cast<Priority>(i);
    }
    return std::nullopt;
}

bool is_final(JobStatus status) {
    return status == JobStatus::SUCCEEDED || status == JobStatus::FAILED ||
           status == JobStatus::CANCELLED;
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace kiln::scheduler
