#include "server/http_error.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "server/api_error.h"

namespace kiln::server {

namespace {

constexpr int store_retry_after_s = 2;

HttpError from_api(ApiCode code) {
    switch (code) {
        case ApiCode::BAD_REQUEST:
            return {400, "bad_request", {}};
        case ApiCode::UNAUTHORIZED:
            return {401, "unauthorized", {}};
        case ApiCode::NOT_FOUND:
            return {404, "not_found", {}};
        case ApiCode::PAYLOAD_TOO_LARGE:
            return {413, "payload_too_large", {}};
        case ApiCode::UNSUPPORTED_MEDIA:
            return {415, "unsupported_media_type", {}};
        case ApiCode::INVALID_PARAMS:
            return {422, "invalid_params", {}};
        case ApiCode::NOT_READY:
            return {503, "draining", {}};
        case ApiCode::TOO_MANY_SESSIONS:
            return {429, "too_many_sessions", {}};
        case ApiCode::TOO_MANY_STREAMS:
            return {429, "session_too_many_streams", {}};
    }
    return {500, "internal", {}};
}

HttpError from_engine(core::ErrorCode code) {
    switch (code) {
        case core::ErrorCode::INVALID_ARGUMENT:
            return {422, "invalid_params", {}};
        case core::ErrorCode::BAD_FILE:
            return {422, "invalid_image", {}};
        case core::ErrorCode::UNSUPPORTED:
            return {415, "unsupported_media_type", {}};
        case core::ErrorCode::NOT_FOUND:
            return {404, "not_found", {}};
        case core::ErrorCode::TOO_LARGE:
            return {413, "payload_too_large", {}};
        case core::ErrorCode::OUT_OF_MEMORY:
            return {503, "out_of_memory", {}};
        case core::ErrorCode::CANCELLED:
            return {409, "cancelled", {}};
        case core::ErrorCode::NO_SPACE:  // frees up as jobs are deleted or expire
            return {507, "storage_full", {}, 30};
        case core::ErrorCode::UNAVAILABLE:  // nodes reconnect by themselves: soon worth a retry
            return {503, "store_unavailable", {}, store_retry_after_s};
        case core::ErrorCode::IO:
        case core::ErrorCode::INTERNAL:
            break;
    }
    return {500, "internal", {}};
}

}  // namespace

HttpError http_error_of(scheduler::SchedulerCode code) {
    using scheduler::SchedulerCode;
    switch (code) {
        case SchedulerCode::NOT_FOUND:
            return {404, "not_found", {}};
        case SchedulerCode::MODEL_NOT_FOUND:
            return {404, "model_not_found", {}};
        case SchedulerCode::CONFLICT:
            return {409, "conflict", {}};
        case SchedulerCode::MISSING_INPUT:
            return {400, "bad_request", {}};
        case SchedulerCode::TOO_LARGE:
            return {413, "payload_too_large", {}};
        case SchedulerCode::UNSUPPORTED_INPUT:
            return {415, "unsupported_media_type", {}};
        case SchedulerCode::INVALID_PARAMS:
            return {422, "invalid_params", {}};
        case SchedulerCode::IDEMPOTENCY_REUSED:
            return {422, "idempotency_key_reused", {}};
        case SchedulerCode::QUEUE_FULL:
            return {429, "queue_full", {}};
        case SchedulerCode::SESSION_QUEUE_FULL:
            return {429, "session_queue_full", {}};
        case SchedulerCode::SESSION_STORAGE_FULL:
            return {507, "session_storage_full", {}};
        case SchedulerCode::DRAINING:
            return {503, "draining", {}};
    }
    return {500, "internal", {}};
}

HttpError http_error_from(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const ApiError& e) {
        HttpError out = from_api(e.code());
        out.message = e.what();
        out.retry_after_s = e.retry_after_s();
        return out;
    } catch (const scheduler::SchedulerError& e) {
        HttpError out = http_error_of(e.code());
        out.message = e.what();
        // What the scheduler's words mean in this API: where to look, what to send.
        if (e.code() == scheduler::SchedulerCode::MODEL_NOT_FOUND)
            out.message += "; GET /v1/models lists them";
        switch (e.expected_input()) {
            case scheduler::InputPart::IMAGE:
                out.message += " (\"input.image\" as base64, or a multipart \"image\" part)";
                break;
            case scheduler::InputPart::PROMPT:
                out.message += " (send \"input.prompt\")";
                break;
            case scheduler::InputPart::NONE:
                break;
        }
        out.retry_after_s = e.retry_after_s();
        return out;
    } catch (const core::Error& e) {
        HttpError out = from_engine(e.code());
        // The store's address is the deployment's business, not the client's: the node logs it.
        out.message = e.code() == core::ErrorCode::UNAVAILABLE
                          ? std::string(
                                "the job store cannot be reached right now; retry after "
                                "Retry-After seconds (a new job with the same "
                                "Idempotency-Key, so that it is made once)")
                          : std::string(e.what());
        return out;
    } catch (const nlohmann::json::exception& e) {
        return {400, "bad_request", std::string("malformed JSON: ") + e.what()};
    } catch (const std::exception& e) {
        return {500, "internal", e.what()};
    } catch (...) {
        return {500, "internal", "unknown error"};
    }
}

void send_error(httplib::Response& res, const HttpError& error) {
    res.status = error.status;
    if (error.retry_after_s > 0)
        res.set_header("Retry-After", std::to_string(error.retry_after_s));
    if (error.status == 401)
        res.set_header("WWW-Authenticate", "Bearer");
    const nlohmann::json body = {{"error", {{"code", error.code}, {"message", error.message}}}};
    // Messages may echo client bytes (ids from the path): never fail on invalid UTF-8.
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
}

}  // namespace kiln::server
