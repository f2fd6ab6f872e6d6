// The JSON the API speaks about jobs: parsing a submission into a native request early, and
// every job body the server sends.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "scheduler/job.h"
#include "scheduler/scheduler.h"

namespace kiln::server {

// RFC 3339 UTC with milliseconds; null for 0 ("not yet").
nlohmann::json json_time(int64_t ms);

// GET /v1/jobs/{id} and list entries.
nlohmann::json job_json(const scheduler::Job& job);
// The 202 body of POST /v1/jobs and /retry.
nlohmann::json accepted_json(const scheduler::Job& job);

// The request's JSON part (without the image for multipart). Fills model, task, params (the
// model's task checks them at admission) and priority. Throws ApiError BAD_REQUEST (shape) or
// INVALID_PARAMS (values).
void parse_submission(const nlohmann::json& body, scheduler::SubmitRequest& request);

// Standard base64 (padding optional, whitespace ignored); BAD_REQUEST when malformed.
std::vector<uint8_t> decode_base64(const std::string& text);

}  // namespace kiln::server
