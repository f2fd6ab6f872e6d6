// Jobs and sessions as the Redis store keeps them: one JSON object per record, every stored
// field by name (a field added later decodes with its default from older records). The live
// queue position is not stored.
#pragma once

#include <string>
#include <string_view>

#include "scheduler/job.h"

namespace kiln::scheduler {

std::string encode_job(const Job& job);
// Throws core::Error(BAD_FILE) naming the field when the record is not a job.
Job decode_job(std::string_view record);

std::string encode_session(const Session& session);
Session decode_session(std::string_view record);

}  // namespace kiln::scheduler
