#include "server/job_json.h"

#include <ctime>

#include "server/api_error.h"

namespace kiln::server {

using nlohmann::json;

json json_time(int64_t ms) {
    if (ms <= 0)
        return nullptr;
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char text[96];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    return text;
}

json job_json(const scheduler::Job& job) {
    json outputs = json::array();
    for (const auto& o : job.outputs) {
        outputs.push_back({{"url", "/v1/jobs/" + job.id + "/outputs/" + std::to_string(o.index)},
                           {"width", o.width},
                           {"height", o.height},
                           {"content_type", o.content_type}});
    }
    json params = json::parse(job.params_json);
    json j = {
        {"id", job.id},
        {"task", scheduler::task_kind_name(job.task)},  // says what its params are
        {"model", job.model},
        {"status", scheduler::job_status_name(job.status)},
        {"priority", scheduler::priority_name(job.priority)},
        {"progress", {{"done", job.progress_done}, {"total", job.progress_total}}},
        {"created_at", json_time(job.created_at)},
        {"started_at", json_time(job.started_at)},
        {"finished_at", json_time(job.finished_at)},
        {"attempts", job.attempts},
        {"error", job.error ? json{{"code", job.error->code}, {"message", job.error->message}}
                            : json(nullptr)},
        {"outputs", outputs},
        {"params", std::move(params)},
        {"retry_of", job.retry_of.empty() ? json(nullptr) : json(job.retry_of)},
        {"update_seq", job.update_seq},
    };
    if (job.status == scheduler::JobStatus::QUEUED)
        j["position"] = job.position;
    return j;
}

json accepted_json(const scheduler::Job& job) {
    json j = {{"id", job.id},
              {"status", scheduler::job_status_name(job.status)},
              {"position", job.position},
              {"created_at", json_time(job.created_at)}};
    if (!job.retry_of.empty())
        j["retry_of"] = job.retry_of;
    return j;
}

void parse_submission(const json& body, scheduler::SubmitRequest& request) {
    if (!body.is_object())
        throw ApiError(ApiCode::BAD_REQUEST, "the request body must be a JSON object");
    const auto model = body.find("model");
    if (model == body.end() || !model->is_string() || model->get<std::string>().empty())
        throw ApiError(ApiCode::BAD_REQUEST, "\"model\" (a model name) is required");
    request.model = model->get<std::string>();
    if (auto task = body.find("task"); task != body.end()) {
        request.task =
            task->is_string() ? scheduler::parse_task_kind(task->get<std::string>()) : std::nullopt;
        if (!request.task) {
            throw ApiError(ApiCode::INVALID_PARAMS,
                           "\"task\" must be \"upscale\" or \"generate\" (or omitted)");
        }
    }
    json params = json::object();
    if (auto p = body.find("params"); p != body.end() && !p->is_null()) {
        if (!p->is_object())
            throw ApiError(ApiCode::BAD_REQUEST, "\"params\" must be an object");
        params = *p;
    }
    request.params_json = params.dump();  // the model's task validates them at admission
    if (auto p = body.find("priority"); p != body.end() && !p->is_null()) {
        const auto priority =
            p->is_string() ? scheduler::parse_priority(p->get<std::string>()) : std::nullopt;
        if (!priority) {
            throw ApiError(ApiCode::INVALID_PARAMS,
                           "\"priority\" must be \"high\", \"normal\" or \"low\"");
        }
        request.priority = *priority;
    }
}

std::vector<uint8_t> decode_base64(const std::string& text) {
    std::vector<uint8_t> out;
    out.reserve(text.size() / 4 * 3);
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;
    for (char c : text) {
        int v = -1;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=') {
            ++pad;
            continue;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (v < 0 || pad > 0)
            throw ApiError(ApiCode::BAD_REQUEST, "\"input.image\" is not valid base64");
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
        }
    }
    if (pad > 2)
        throw ApiError(ApiCode::BAD_REQUEST, "\"input.image\" is not valid base64");
    return out;
}

}  // namespace kiln::server
