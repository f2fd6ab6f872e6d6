// A job submission's JSON as the server reads it: the body parsed (depth-limited by the
// parser's own checks), the submission fields, the base64 image.
#include <nlohmann/json.hpp>

#include "scheduler/scheduler.h"
#include "server/api_error.h"
#include "server/job_json.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const nlohmann::json body = nlohmann::json::parse(data, data + size, nullptr, false);
    if (body.is_discarded())
        return 0;
    try {
        kiln::scheduler::SubmitRequest request;
        kiln::server::parse_submission(body, request);
        if (const auto input = body.find("input"); input != body.end() && input->is_object()) {
            if (const auto image = input->find("image");
                image != input->end() && image->is_string())
                kiln::server::decode_base64(image->get<std::string>());
        }
    } catch (const kiln::server::ApiError&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    return 0;
}
