// Jobs as the Redis store keeps them: one JSON object per record, every stored field by name
// (a field added later decodes with its default from older records). The live queue position
// is not stored. Sessions need no codec: the store keeps their few fields in a hash.
#pragma once

#include <string>
#include <string_view>

#include "scheduler/job.h"

namespace kiln::scheduler {

std::string encode_job(const Job& job);
// Throws core::Error(BAD_FILE) naming the field when the record is not a job.
Job decode_job(std::string_view record);

// The idempotency key is whatever bytes a client sent in a header, so records and key names
// hold it as lowercase hex.
std::string idempotency_key_hex(std::string_view key);

}  // namespace kiln::scheduler
