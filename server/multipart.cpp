#include "server/multipart.h"

#include <algorithm>
#include <cctype>

#include "server/api_error.h"

namespace kiln::server {

namespace {

constexpr size_t max_header_bytes = 8192;  // a part's header block

[[noreturn]] void malformed(const std::string& what) {
    throw ApiError(ApiCode::BAD_REQUEST, "malformed multipart body: " + what);
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// The value of parameter `key` in a header value such as `form-data; name="x"`; quoted
// values lose their quotes (a backslash escapes the next character).
std::optional<std::string> header_parameter(std::string_view value, std::string_view key) {
    size_t pos = value.find(';');
    while (pos != std::string_view::npos) {
        std::string_view rest = trim(value.substr(pos + 1));
        const size_t eq = rest.find('=');
        if (eq == std::string_view::npos)
            return std::nullopt;
        const std::string_view name = trim(rest.substr(0, eq));
        std::string_view raw = trim(rest.substr(eq + 1));
        std::string parsed;
        size_t consumed = 0;
        if (!raw.empty() && raw.front() == '"') {
            size_t i = 1;
            for (; i < raw.size() && raw[i] != '"'; ++i) {
                if (raw[i] == '\\' && i + 1 < raw.size())
                    ++i;
                parsed.push_back(raw[i]);
            }
            if (i >= raw.size())
                return std::nullopt;  // unterminated quote
            consumed = i + 1;
        } else {
            consumed = std::min(raw.find(';'), raw.size());
            parsed = std::string(trim(raw.substr(0, consumed)));
        }
        if (iequals(name, key))
            return parsed;
        const size_t next = raw.find(';', consumed);
        if (next == std::string_view::npos)
            return std::nullopt;
        pos = static_cast<size_t>(raw.data() + next - value.data());
    }
    return std::nullopt;
}

void read_part_headers(std::string_view headers, MultipartPart& part) {
    bool disposition = false;
    while (!headers.empty()) {
        const size_t end = headers.find("\r\n");
        const std::string_view line = headers.substr(0, end);
        headers = end == std::string_view::npos ? std::string_view() : headers.substr(end + 2);
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos)
            malformed("a part header line has no ':'");
        const std::string_view name = trim(line.substr(0, colon));
        const std::string_view value = trim(line.substr(colon + 1));
        if (iequals(name, "Content-Disposition")) {
            const std::string_view type = trim(value.substr(0, value.find(';')));
            if (!iequals(type, "form-data"))
                malformed("a part's Content-Disposition is not form-data");
            const auto field = header_parameter(value, "name");
            if (!field || field->empty())
                malformed("a part's Content-Disposition has no name");
            part.name = *field;
            part.filename = header_parameter(value, "filename").value_or("");
            disposition = true;
        } else if (iequals(name, "Content-Type")) {
            part.content_type = std::string(value);
        }
    }
    if (!disposition)
        malformed("a part has no Content-Disposition");
}

constexpr const char* moved_type_header = "X-Kiln-Form-Content-Type";

}  // namespace

void keep_multipart_body_raw(httplib::Request& req) {
    req.headers.erase(moved_type_header);
    const std::string type = req.get_header_value("Content-Type");
    if (!is_multipart_form_data(type))
        return;
    req.headers.erase("Content-Type");
    req.headers.emplace("Content-Type", "application/octet-stream");
    req.headers.emplace(moved_type_header, type);
}

std::string client_content_type(const httplib::Request& req) {
    return req.has_header(moved_type_header) ? req.get_header_value(moved_type_header)
                                             : req.get_header_value("Content-Type");
}

bool is_multipart_form_data(std::string_view content_type) {
    return iequals(trim(content_type.substr(0, content_type.find(';'))), "multipart/form-data");
}

std::optional<std::string> multipart_boundary(std::string_view content_type) {
    if (!is_multipart_form_data(content_type))
        return std::nullopt;
    auto boundary = header_parameter(content_type, "boundary");
    if (!boundary || boundary->empty() || boundary->size() > 70)
        return std::nullopt;
    return boundary;
}

std::vector<MultipartPart> parse_multipart(std::string_view body, std::string_view boundary) {
    const std::string delimiter = "--" + std::string(boundary);
    const std::string inner = "\r\n" + delimiter;
    // The first delimiter: at the start, or after a preamble (which ends in CRLF).
    size_t pos = 0;
    if (body.substr(0, delimiter.size()) != delimiter) {
        pos = body.find(inner);
        if (pos == std::string_view::npos)
            malformed("no opening boundary");
        pos += 2;
    }
    std::vector<MultipartPart> parts;
    for (;;) {
        pos += delimiter.size();
        if (body.substr(pos, 2) == "--")
            break;  // the closing delimiter; anything after it (CRLF or not) is epilogue
        // Transport padding, then the CRLF ending the delimiter line.
        while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t'))
            ++pos;
        if (body.substr(pos, 2) != "\r\n")
            malformed("a boundary line does not end in CRLF");
        pos += 2;
        if (parts.size() == max_multipart_parts)
            malformed("more than " + std::to_string(max_multipart_parts) + " parts");
        MultipartPart part;
        const size_t headers_end = body.find("\r\n\r\n", pos);
        if (body.substr(pos, 2) == "\r\n") {
            malformed("a part has no headers");
        }
        if (headers_end == std::string_view::npos || headers_end - pos > max_header_bytes)
            malformed("a part's headers do not end");
        read_part_headers(body.substr(pos, headers_end - pos), part);
        const size_t content = headers_end + 4;
        const size_t next = body.find(inner, content);
        if (next == std::string_view::npos)
            malformed("a part is not followed by a boundary (truncated?)");
        part.body = body.substr(content, next - content);
        parts.push_back(std::move(part));
        pos = next + 2;
    }
    return parts;
}

}  // namespace kiln::server
