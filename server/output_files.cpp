#include "server/output_files.h"

#include <charconv>

#include "scheduler/ids.h"
#include "scheduler/result_names.h"
#include "server/api_error.h"

namespace kiln::server {

std::string output_url(const std::string& job_id, int index) {
    return "/v1/jobs/" + job_id + "/outputs/" + std::to_string(index);
}

std::string thumbnail_url(const std::string& job_id, int index) {
    return output_url(job_id, index) + "/thumbnail";
}

void send_output_file(ApiContext& context,
                      const httplib::Request& req,
                      httplib::Response& res,
                      const std::string& session_id,
                      OutputFile which) {
    const std::string id = req.matches[1];
    const std::string k = req.matches[2];
    const auto missing = [&] {
        return ApiError(ApiCode::NOT_FOUND, "job " + id + " has no output " + k);
    };
    if (!scheduler::is_valid_id(id))
        throw missing();
    const auto job = context.scheduler.get(session_id, id);
    int index = -1;
    const auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), index);
    if (!job || ec != std::errc() || end != k.data() + k.size() || index < 0 ||
        index >= static_cast<int>(job->outputs.size()) ||
        job->status != scheduler::JobStatus::SUCCEEDED) {
        throw missing();
    }
    const scheduler::JobOutput& output = job->outputs[static_cast<size_t>(index)];
    const bool thumbnail = which == OutputFile::THUMBNAIL;
    // Strong validators from the output's content digest; the thumbnail's differs by a prefix.
    const std::string etag = std::string(thumbnail ? "\"t-" : "\"") + output.digest + "\"";
    res.set_header("ETag", etag);
    res.set_header("Cache-Control", "private, max-age=86400");
    if (req.get_header_value("If-None-Match") == etag) {
        res.status = 304;
        return;
    }
    const std::string name =
        thumbnail ? scheduler::thumbnail_file_name(index) : scheduler::output_file_name(index);
    const auto bytes = context.results.get(session_id, id, name);
    if (!bytes)
        throw missing();
    res.status = 200;
    res.set_content(std::string(bytes->begin(), bytes->end()), output.content_type);
}

}  // namespace kiln::server
