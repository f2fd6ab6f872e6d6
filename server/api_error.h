// Refusals of the HTTP layer itself: malformed requests, authentication, routes and files that
// do not exist, bodies over the limit, media types. The scheduler's refusals are
// scheduler::SchedulerError; http_error.cpp maps both (and core::Error) to one JSON answer.
#pragma once

#include <stdexcept>
#include <string>

namespace kiln::server {

enum class ApiCode {
    BAD_REQUEST,        // malformed body, header or query parameter
    UNAUTHORIZED,       // missing or invalid token / API key
    NOT_FOUND,          // no such job, output or route in this session
    PAYLOAD_TOO_LARGE,  // the body is over the limit
    UNSUPPORTED_MEDIA,  // a content type the route does not take
    INVALID_PARAMS,     // a well-formed request with invalid values
    NOT_READY,          // /readyz while starting or draining
    TOO_MANY_SESSIONS,  // this client address created its hourly number of sessions
    TOO_MANY_STREAMS,   // this session has its number of event streams open
};

class ApiError : public std::runtime_error {
  public:
    ApiError(ApiCode code, const std::string& message, int retry_after_s = 0)
        : std::runtime_error(message), code_(code), retry_after_s_(retry_after_s) {}
    ApiCode code() const { return code_; }
    int retry_after_s() const { return retry_after_s_; }

  private:
    ApiCode code_;
    int retry_after_s_;
};

}  // namespace kiln::server
