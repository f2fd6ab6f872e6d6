// Refusals of the scheduler that are not engine failures: an unknown job or model, a job in
// the wrong state, an input or parameters the task refuses, full queues, shutting down. They
// name no transport: the server maps each code to its HTTP answer (server/http_error.cpp), the
// CLI prints the message.
#pragma once

#include <stdexcept>
#include <string>

namespace kiln::scheduler {

enum class SchedulerCode {
    NOT_FOUND,             // no such job in this session
    MODEL_NOT_FOUND,       // unknown model name
    CONFLICT,              // the job is in the wrong state for this action
    MISSING_INPUT,         // the task's input (an image, a prompt) was not given
    TOO_LARGE,             // the input is over a limit, or no plan fits the memory budget
    UNSUPPORTED_INPUT,     // the input's format is not one the task reads
    INVALID_PARAMS,        // well-formed but invalid parameters or input
    IDEMPOTENCY_REUSED,    // the same idempotency key with a different request
    QUEUE_FULL,            // the queue limit, all sessions
    SESSION_QUEUE_FULL,    // the per-session queue limit
    SESSION_STORAGE_FULL,  // the session's stored files are at their limit
    DRAINING,              // shutting down: no new jobs
};

// The part of a job's input (TaskInput) a refusal is about, so that a transport can say how
// its clients send it.
enum class InputPart { NONE, IMAGE, PROMPT };

class SchedulerError : public std::runtime_error {
  public:
    SchedulerError(SchedulerCode code, const std::string& message, int retry_after_s = 0)
        : std::runtime_error(message), code_(code), retry_after_s_(retry_after_s) {}
    SchedulerError(SchedulerCode code, const std::string& message, InputPart expected)
        : std::runtime_error(message), code_(code), retry_after_s_(0), expected_(expected) {}
    SchedulerCode code() const { return code_; }
    // Seconds after which the same request may succeed (queue limits, draining); 0: none.
    int retry_after_s() const { return retry_after_s_; }
    // The input the task expected instead of what it got; NONE when not about the input.
    InputPart expected_input() const { return expected_; }

  private:
    SchedulerCode code_;
    int retry_after_s_;
    InputPart expected_ = InputPart::NONE;
};

}  // namespace kiln::scheduler
