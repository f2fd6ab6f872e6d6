// multipart/form-data (RFC 7578) read by kiln itself rather than by cpp-httplib, whose
// parser (0.11.4) refuses a body that ends without the CRLF after the closing delimiter, as
// Node 18's fetch sends it (RFC 2046 makes that CRLF optional). The server reads multipart
// bodies raw (api_server.cpp hides their content type from cpp-httplib) and the routes that
// take one parse it here. Bounded: at most max_parts parts, header lines as given below; the
// whole body is already under the server's body limit.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::server {

struct MultipartPart {
    std::string name;          // Content-Disposition's name
    std::string filename;      // Content-Disposition's filename, when given
    std::string content_type;  // the part's Content-Type, when given
    std::string_view body;     // a view into the parsed body
};

inline constexpr size_t max_multipart_parts = 16;

// Before cpp-httplib reads a body: a multipart/form-data content type is moved to an
// internal header (one a client sent under that name is dropped) so that the body arrives
// raw in req.body. Called from the pre-routing handler, whose request is the server's own
// (non-const) object.
void keep_multipart_body_raw(httplib::Request& req);
// The content type the client sent: the one keep_multipart_body_raw moved, or the header.
std::string client_content_type(const httplib::Request& req);

// Whether the media type (before any parameter, any case) is multipart/form-data.
bool is_multipart_form_data(std::string_view content_type);

// The boundary of a `multipart/form-data; boundary=...` content type (quoted or not);
// nullopt when the type is not multipart/form-data or has no valid boundary (1..70 chars).
std::optional<std::string> multipart_boundary(std::string_view content_type);

// The parts of `body`. Throws ApiError(BAD_REQUEST) naming what is malformed: no opening
// delimiter, a part without headers' end or without a closing delimiter, a part with no
// Content-Disposition name, more than max_multipart_parts parts.
std::vector<MultipartPart> parse_multipart(std::string_view body, std::string_view boundary);

}  // namespace kiln::server
