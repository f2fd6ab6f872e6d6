// kiln's multipart/form-data reader: the first line of the input is the Content-Type header's
// value, the rest the body.
#include <string_view>

#include "server/api_error.h"
#include "server/multipart.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const size_t eol = input.find('\n');
    const std::string_view type = input.substr(0, eol);
    const std::string_view body = eol == std::string_view::npos ? "" : input.substr(eol + 1);
    try {
        if (const auto boundary = kiln::server::multipart_boundary(type)) {
            for (const auto& part : kiln::server::parse_multipart(body, *boundary)) {
                if (part.body.data() < body.data() ||
                    part.body.data() + part.body.size() > body.data() + body.size()) {
                    kiln::fuzz::finding("a part's body lies outside the request body");
                }
            }
        }
    } catch (const kiln::server::ApiError&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    return 0;
}
