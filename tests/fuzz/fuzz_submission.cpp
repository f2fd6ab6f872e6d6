// A job submission's JSON as the server reads it: the nesting check, the body parsed, the
// submission fields, the base64 image, and the dump the idempotency hash is taken of (the
// recursive step a deeply nested body would overflow the stack in).
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/json_depth.h"
#include "scheduler/scheduler.h"
#include "server/api_error.h"
#include "server/job_json.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (kiln::core::json_nesting_depth(text, kiln::core::max_json_depth) >
        kiln::core::max_json_depth)
        return 0;  // refused with 400 before parsing
    nlohmann::json body = nlohmann::json::parse(data, data + size, nullptr, false);
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
        if (body.dump().empty())
            kiln::fuzz::finding("a parsed body dumped to nothing");
    } catch (const kiln::server::ApiError&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    return 0;
}
