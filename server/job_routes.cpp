// /v1/jobs: submit (JSON with base64 or multipart), get, list, cancel, retry, delete, the
// submitted input, outputs.
#include <charconv>

#include "core/json_depth.h"
#include "scheduler/ids.h"
#include "server/api_context.h"
#include "server/api_error.h"
#include "server/http_limits.h"
#include "server/job_json.h"
#include "server/multipart.h"
#include "server/output_files.h"

namespace kiln::server {

namespace {

using nlohmann::json;

constexpr int max_list_limit = 100;

std::string job_id_of(const httplib::Request& req) {
    const std::string id = req.matches[1];
    if (!scheduler::is_valid_id(id))  // also keeps path tricks away from the stores
        throw ApiError(ApiCode::NOT_FOUND, "no job " + id + " in this session");
    return id;
}

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

int64_t parse_int(const std::string& text, const char* name, int64_t min, int64_t max) {
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
        throw ApiError(ApiCode::BAD_REQUEST,
                       std::string("\"") + name + "\" must be an integer from " +
                           std::to_string(min) + " to " + std::to_string(max));
    }
    return v;
}

json parse_json(const std::string& text) {
    if (core::json_nesting_depth(text, core::max_json_depth) > core::max_json_depth) {
        throw ApiError(ApiCode::BAD_REQUEST, "the request's JSON nests deeper than " +
                                                 std::to_string(core::max_json_depth) + " levels");
    }
    json body = json::parse(text, nullptr, false);
    if (body.is_discarded())
        throw ApiError(ApiCode::BAD_REQUEST, "the request body is not valid JSON");
    return body;
}

// Reads either submission form into a request; the hash covers the JSON and the image.
scheduler::SubmitRequest read_submission(const httplib::Request& req,
                                         const ServerOptions& options) {
    scheduler::SubmitRequest request;
    json body;
    const std::string type = client_content_type(req);
    if (starts_with(type, "application/json")) {
        body = parse_json(req.body);
        parse_submission(body, request);
        // The input as sent; the model's task says which part it needs.
        const auto input = body.find("input");
        const bool has_image = input != body.end() && input->is_object() &&
                               input->contains("image") && (*input)["image"].is_string();
        const bool has_prompt = input != body.end() && input->is_object() &&
                                input->contains("prompt") && (*input)["prompt"].is_string();
        if (!has_image && !has_prompt) {
            throw ApiError(ApiCode::BAD_REQUEST,
                           "\"input.image\" (the image as base64, for upscaling models) or "
                           "\"input.prompt\" (for generation models) is required");
        }
        if (has_prompt) {
            request.input.prompt = (*input)["prompt"].get<std::string>();
            if (request.input.prompt->size() > options.max_prompt_bytes) {
                throw ApiError(ApiCode::BAD_REQUEST, "\"input.prompt\" is longer than " +
                                                         std::to_string(options.max_prompt_bytes) +
                                                         " bytes");
            }
        }
        if (has_image) {
            request.input.image = decode_base64((*input)["image"].get<std::string>());
            if (request.input.image.empty())
                throw ApiError(ApiCode::BAD_REQUEST, "the image is empty");
            // Hashed separately below; the rest of the input stays in the hashed body.
            input->erase("image");
            if (input->empty())
                body.erase(input);
        }
    } else if (const auto boundary = multipart_boundary(type)) {
        const MultipartPart* json_part = nullptr;
        const MultipartPart* image_part = nullptr;
        const std::vector<MultipartPart> parts = parse_multipart(req.body, *boundary);
        for (const MultipartPart& part : parts) {
            if (part.name == "request" && !json_part)
                json_part = &part;
            else if (part.name == "image" && !image_part)
                image_part = &part;
        }
        if (!json_part || !image_part) {
            throw ApiError(ApiCode::BAD_REQUEST,
                           "multipart submissions need a \"request\" part (JSON) and an "
                           "\"image\" file part");
        }
        body = parse_json(std::string(json_part->body));
        parse_submission(body, request);
        request.input.image.assign(image_part->body.begin(), image_part->body.end());
    } else if (is_multipart_form_data(type)) {
        throw ApiError(ApiCode::BAD_REQUEST,
                       "multipart/form-data needs a boundary parameter of 1 to 70 characters");
    } else {
        throw ApiError(ApiCode::UNSUPPORTED_MEDIA,
                       "send application/json or multipart/form-data, not '" + type + "'");
    }
    if (request.input.image.empty() && !request.input.prompt &&
        !starts_with(type, "application/json"))
        throw ApiError(ApiCode::BAD_REQUEST, "the image is empty");
    const std::vector<uint8_t>& image_bytes = request.input.image;
    const std::string image_hash = scheduler::sha256_hex(
        std::string_view(reinterpret_cast<const char*>(image_bytes.data()), image_bytes.size()));
    request.request_hash = scheduler::sha256_hex(body.dump() + "\n" + image_hash);
    request.idempotency_key = req.get_header_value("Idempotency-Key");
    if (request.idempotency_key.size() > http_limits::idempotency_key_bytes) {
        throw ApiError(ApiCode::BAD_REQUEST,
                       "Idempotency-Key is longer than " +
                           std::to_string(http_limits::idempotency_key_bytes) + " bytes");
    }
    return request;
}

void send_accepted(httplib::Response& res, const scheduler::Job& job) {
    res.set_header("Location", "/v1/jobs/" + job.id);
    send_json(res, 202, accepted_json(job));
}

scheduler::Job find_job(scheduler::Scheduler& scheduler,
                        const std::string& session_id,
                        const std::string& id) {
    auto job = scheduler.get(session_id, id);
    if (!job)
        throw ApiError(ApiCode::NOT_FOUND, "no job " + id + " in this session");
    return *job;
}

void list_jobs(scheduler::Scheduler& scheduler,
               const httplib::Request& req,
               httplib::Response& res,
               const std::string& session_id) {
    scheduler::JobQuery query;
    if (req.has_param("status")) {
        query.status = scheduler::parse_job_status(req.get_param_value("status"));
        if (!query.status) {
            throw ApiError(ApiCode::BAD_REQUEST,
                           "\"status\" must be queued, running, succeeded, failed or "
                           "cancelled");
        }
    }
    if (req.has_param("limit"))
        query.limit =
            static_cast<int>(parse_int(req.get_param_value("limit"), "limit", 1, max_list_limit));
    if (req.has_param("cursor"))
        query.before_seq = parse_int(req.get_param_value("cursor"), "cursor", 1, INT64_MAX);
    if (req.has_param("updated_since")) {
        query.updated_since =
            parse_int(req.get_param_value("updated_since"), "updated_since", 0, INT64_MAX);
    }
    const std::vector<scheduler::Job> jobs = scheduler.list(session_id, query);
    json items = json::array();
    for (const auto& job : jobs)
        items.push_back(job_json(job));
    const bool more = static_cast<int>(jobs.size()) == query.limit;
    send_json(res, 200,
              {{"jobs", items},
               {"next_cursor", more ? json(std::to_string(jobs.back().seq)) : json(nullptr)}});
}

// The job's submitted input, as long as the result store keeps it (until the job is deleted).
void send_input(scheduler::Scheduler& scheduler,
                const httplib::Request& req,
                httplib::Response& res,
                const std::string& session_id) {
    const std::string id = job_id_of(req);
    const auto input = scheduler.input(session_id, id);  // 404 for another session's job
    if (!input)
        throw ApiError(ApiCode::NOT_FOUND, "job " + id + " no longer keeps its input");
    res.set_header("Cache-Control", "private, max-age=86400");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.status = 200;
    res.set_content(std::string(input->bytes.begin(), input->bytes.end()), input->content_type);
}

}  // namespace

void register_job_routes(Router& router, ApiContext& context) {
    auto& scheduler = context.scheduler;
    router.add("POST", "/v1/jobs",
               [&scheduler, &context](const httplib::Request& req, httplib::Response& res,
                                      const std::string& session_id) {
                   scheduler::SubmitRequest request = read_submission(req, context.options);
                   request.session_id = session_id;
                   const scheduler::SubmitResult result = scheduler.submit(std::move(request));
                   if (result.existing) {
                       res.set_header("Location", "/v1/jobs/" + result.job.id);
                       send_json(res, 200, job_json(result.job));
                   } else {
                       send_accepted(res, result.job);
                   }
               });
    router.add("GET", "/v1/jobs",
               [&scheduler](const httplib::Request& req, httplib::Response& res,
                            const std::string& session_id) {
                   list_jobs(scheduler, req, res, session_id);
               });
    router.add("GET", "/v1/jobs/{id}",
               [&scheduler](const httplib::Request& req, httplib::Response& res,
                            const std::string& session_id) {
                   send_json(res, 200, job_json(find_job(scheduler, session_id, job_id_of(req))));
               });
    router.add("DELETE", "/v1/jobs/{id}",
               [&scheduler](const httplib::Request& req, httplib::Response& res,
                            const std::string& session_id) {
                   scheduler.remove(session_id, job_id_of(req));
                   res.status = 204;
               });
    router.add("POST", "/v1/jobs/{id}/cancel",
               [&scheduler](const httplib::Request& req, httplib::Response& res,
                            const std::string& session_id) {
                   const std::string id = job_id_of(req);
                   const auto outcome = scheduler.cancel(session_id, id);
                   const int status = outcome == scheduler::CancelOutcome::CANCELLED ? 200 : 202;
                   send_json(res, status, job_json(find_job(scheduler, session_id, id)));
               });
    router.add("POST", "/v1/jobs/{id}/retry",
               [&scheduler](const httplib::Request& req, httplib::Response& res,
                            const std::string& session_id) {
                   send_accepted(res, scheduler.retry(session_id, job_id_of(req)).job);
               });
    router.add("GET", "/v1/jobs/{id}/input",
               [&context](const httplib::Request& req, httplib::Response& res,
                          const std::string& session_id) {
                   send_input(context.scheduler, req, res, session_id);
               });
    router.add("GET", "/v1/jobs/{id}/outputs/{k}/thumbnail",
               [&context](const httplib::Request& req, httplib::Response& res,
                          const std::string& session_id) {
                   send_output_file(context, req, res, session_id, OutputFile::THUMBNAIL);
               });
    router.add("GET", "/v1/jobs/{id}/outputs/{k}",
               [&context](const httplib::Request& req, httplib::Response& res,
                          const std::string& session_id) {
                   send_output_file(context, req, res, session_id, OutputFile::IMAGE);
               });
}

}  // namespace kiln::server
