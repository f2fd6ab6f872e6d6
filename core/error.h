// kiln's one error type. Code below the job boundary throws core::Error; the CLI and the
// scheduler catch it, report code + message, and carry on (a bad file never ends the process).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace kiln::core {

enum class ErrorCode {
    INVALID_ARGUMENT,  // the caller asked for something impossible
    BAD_FILE,          // a file is malformed, truncated or hostile
    UNSUPPORTED,       // well-formed, but kiln does not implement it
    NOT_FOUND,
    IO,
    NO_SPACE,       // the disk (or a quota) is full: a write failed, nothing partial is kept
    TOO_LARGE,      // over a configured limit (pixels, bytes)
    OUT_OF_MEMORY,  // an allocation failed; the caller may retry smaller
    CANCELLED,
    // A shared service kiln depends on (the Redis store) cannot be reached now; the same
    // request may succeed later, so callers retry or answer 503 instead of failing for good.
    UNAVAILABLE,
    INTERNAL,
};

std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
  public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const { return code_; }

  private:
    ErrorCode code_;
};

}  // namespace kiln::core
