// Serving a job's output image or its gallery thumbnail: session-scoped lookup, ETag,
// If-None-Match, Cache-Control: private.
#pragma once

#include "server/api_context.h"

namespace kiln::server {

enum class OutputFile { IMAGE, THUMBNAIL };

// req.matches: [1] job id, [2] output index. Throws ApiError NOT_FOUND.
void send_output_file(ApiContext& context,
                      const httplib::Request& req,
                      httplib::Response& res,
                      const std::string& session_id,
                      OutputFile which);

std::string output_url(const std::string& job_id, int index);
std::string thumbnail_url(const std::string& job_id, int index);

}  // namespace kiln::server
