#include "server/http_error.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "scheduler/service_error.h"

namespace kiln::server {

namespace {

using scheduler::ServiceCode;

HttpError from_service(ServiceCode code) {
    switch (code) {
        case ServiceCode::BAD_REQUEST:
            return {400, "bad_request", {}};
        case ServiceCode::UNAUTHORIZED:
            return {401, "unauthorized", {}};
        case ServiceCode::NOT_FOUND:
            return {404, "not_found", {}};
        case ServiceCode::MODEL_NOT_FOUND:
            return {404, "model_not_found", {}};
        case ServiceCode::CONFLICT:
            return {409, "conflict", {}};
        case ServiceCode::PAYLOAD_TOO_LARGE:
            return {413, "payload_too_large", {}};
        case ServiceCode::UNSUPPORTED_MEDIA:
            return {415, "unsupported_media_type", {}};
        case ServiceCode::INVALID_PARAMS:
            return {422, "invalid_params", {}};
        case ServiceCode::IDEMPOTENCY_REUSED:
            return {422, "idempotency_key_reused", {}};
        case ServiceCode::QUEUE_FULL:
            return {429, "queue_full", {}};
        case ServiceCode::SESSION_QUEUE_FULL:
            return {429, "session_queue_full", {}};
        case ServiceCode::DRAINING:
            return {503, "draining", {}};
        case ServiceCode::INTERNAL:
            break;
    }
    return {500, "internal", {}};
}

HttpError from_engine(ErrorCode code) {
    switch (code) {
        case ErrorCode::INVALID_ARGUMENT:
            return {422, "invalid_params", {}};
        case ErrorCode::BAD_FILE:
            return {422, "invalid_image", {}};
        case ErrorCode::UNSUPPORTED:
            return {415, "unsupported_media_type", {}};
        case ErrorCode::NOT_FOUND:
            return {404, "not_found", {}};
        case ErrorCode::TOO_LARGE:
            return {413, "payload_too_large", {}};
        case ErrorCode::OUT_OF_MEMORY:
            return {503, "out_of_memory", {}};
        case ErrorCode::CANCELLED:
            return {409, "cancelled", {}};
        case ErrorCode::IO:
        case ErrorCode::INTERNAL:
            break;
    }
    return {500, "internal", {}};
}

}  // namespace

HttpError http_error_from(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const scheduler::ServiceError& e) {
        HttpError out = from_service(e.code());
        out.message = e.what();
        out.retry_after_s = e.retry_after_s();
        return out;
    } catch (const Error& e) {
        HttpError out = from_engine(e.code());
        out.message = e.what();
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
