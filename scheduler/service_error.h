// Refusals the scheduler and the HTTP layer raise that are not engine errors (queue full,
// unknown job, wrong state). The server maps these and kiln::Error to HTTP in one function.
#pragma once

#include <stdexcept>
#include <string>

namespace kiln::scheduler {

enum class ServiceCode {
    BAD_REQUEST,         // malformed body or parameter
    UNAUTHORIZED,        // missing or invalid token / API key
    NOT_FOUND,           // no such job, output or route in this session
    MODEL_NOT_FOUND,     // unknown model name
    CONFLICT,            // the job is in the wrong state for this action
    PAYLOAD_TOO_LARGE,   // body or image over a limit
    UNSUPPORTED_MEDIA,   // content type or image format not accepted
    INVALID_PARAMS,      // well-formed but invalid parameters
    IDEMPOTENCY_REUSED,  // same Idempotency-Key with a different body
    QUEUE_FULL,          // global queue limit
    SESSION_QUEUE_FULL,  // per-session queue limit
    DRAINING,            // shutting down: no new jobs
    INTERNAL,
};

// snake_case, as in HTTP error bodies.
constexpr const char* service_code_name(ServiceCode code) {
    switch (code) {
        case ServiceCode::BAD_REQUEST:
            return "bad_request";
        case ServiceCode::UNAUTHORIZED:
            return "unauthorized";
        case ServiceCode::NOT_FOUND:
            return "not_found";
        case ServiceCode::MODEL_NOT_FOUND:
            return "model_not_found";
        case ServiceCode::CONFLICT:
            return "conflict";
        case ServiceCode::PAYLOAD_TOO_LARGE:
            return "payload_too_large";
        case ServiceCode::UNSUPPORTED_MEDIA:
            return "unsupported_media_type";
        case ServiceCode::INVALID_PARAMS:
            return "invalid_params";
        case ServiceCode::IDEMPOTENCY_REUSED:
            return "idempotency_key_reused";
        case ServiceCode::QUEUE_FULL:
            return "queue_full";
        case ServiceCode::SESSION_QUEUE_FULL:
            return "session_queue_full";
        case ServiceCode::DRAINING:
            return "draining";
        case ServiceCode::INTERNAL:
            break;
    }
    return "internal";
}

class ServiceError : public std::runtime_error {
  public:
    ServiceError(ServiceCode code, const std::string& message, int retry_after_s = 0)
        : std::runtime_error(message), code_(code), retry_after_s_(retry_after_s) {}
    ServiceCode code() const { return code_; }
    int retry_after_s() const { return retry_after_s_; }

  private:
    ServiceCode code_;
    int retry_after_s_;
};

}  // namespace kiln::scheduler
