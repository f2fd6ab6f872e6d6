// The one mapping from failures (ApiError, scheduler::SchedulerError, core::Error, anything
// else) to an HTTP status and the error body {"error": {"code", "message"}}.
#pragma once

#include <exception>
#include <string>

#include "scheduler/scheduler_error.h"

namespace httplib {
struct Response;
}

namespace kiln::server {

struct HttpError {
    int status = 500;
    std::string code;  // snake_case
    std::string message;
    int retry_after_s = 0;  // sent as Retry-After when > 0
};

HttpError http_error_from(std::exception_ptr error);
// The status and code a scheduler refusal answers with (also the reason label of
// kiln_admissions_refused_total).
HttpError http_error_of(scheduler::SchedulerCode code);
// Writes status, body and, for 401 and 429/503, WWW-Authenticate / Retry-After.
void send_error(httplib::Response& res, const HttpError& error);

}  // namespace kiln::server
