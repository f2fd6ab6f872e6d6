#include "core/error.h"

namespace kiln::core {

std::string_view error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::INVALID_ARGUMENT:
            return "invalid_argument";
        case ErrorCode::BAD_FILE:
            return "bad_file";
        case ErrorCode::UNSUPPORTED:
            return "unsupported";
        case ErrorCode::NOT_FOUND:
            return "not_found";
        case ErrorCode::IO:
            return "io_error";
        case ErrorCode::NO_SPACE:
            return "storage_full";
        case ErrorCode::TOO_LARGE:
            return "too_large";
        case ErrorCode::OUT_OF_MEMORY:
            return "out_of_memory";
        case ErrorCode::CANCELLED:
            return "cancelled";
        case ErrorCode::UNAVAILABLE:
            return "store_unavailable";
        case ErrorCode::INTERNAL:
            return "internal";
    }
    return "internal";
}

}  // namespace kiln::core
