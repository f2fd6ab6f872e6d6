// kiln's own multipart/form-data reader (server/multipart.h), and the API taking a body that
// ends without the CRLF after the closing delimiter (Node 18's fetch), which cpp-httplib's
// parser answered with 400.
#include "server/multipart.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "tests/server/server_harness.h"

namespace kiln::server {
namespace {

using nlohmann::json;

const std::string crlf = "\r\n";

std::string part(const std::string& name, const std::string& body, const std::string& extra = "") {
    return "--b0" + crlf + "Content-Disposition: form-data; name=\"" + name + "\"" + extra + crlf +
           crlf + body + crlf;
}

void expect_malformed(const std::string& body, const std::string& mentions) {
    try {
        parse_multipart(body, "b0");
        ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiError& e) {
        EXPECT_EQ(e.code(), ApiCode::BAD_REQUEST);
        EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
}

TEST(Multipart, BoundaryFromTheContentType) {
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc"), "abc");
    EXPECT_EQ(multipart_boundary("Multipart/Form-Data;boundary=\"a b;c\""), "a b;c");
    EXPECT_EQ(multipart_boundary("multipart/form-data; charset=utf-8; boundary=x1"), "x1");
    EXPECT_FALSE(multipart_boundary("multipart/form-data"));
    EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary="));
    EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'x')));
    EXPECT_FALSE(multipart_boundary("multipart/mixed; boundary=abc"));
    EXPECT_FALSE(multipart_boundary("application/json"));
    EXPECT_TRUE(is_multipart_form_data("Multipart/Form-Data"));
    EXPECT_TRUE(is_multipart_form_data(" multipart/form-data ; boundary=x"));
    EXPECT_FALSE(is_multipart_form_data("multipart/mixed; boundary=x"));
}

TEST(Multipart, PartsWithOrWithoutTheFinalCrlf) {
    const std::string binary("\0\r\n-\xff", 5);
    const std::string parts =
        part("request", "{\"model\":\"m\"}") +
        part("image", binary, "; filename=\"a;b.png\"\r\nContent-Type: image/png");
    for (const char* ending : {"--b0--\r\n", "--b0--", "--b0--\r\nepilogue"}) {
        const std::string body = "preamble\r\n" + parts + ending;
        const auto read = parse_multipart(body, "b0");
        ASSERT_EQ(read.size(), 2u) << ending;
        EXPECT_EQ(read[0].name, "request");
        EXPECT_EQ(read[0].body, "{\"model\":\"m\"}");
        EXPECT_EQ(read[1].name, "image");
        EXPECT_EQ(read[1].filename, "a;b.png");
        EXPECT_EQ(read[1].content_type, "image/png");
        EXPECT_EQ(read[1].body, binary);
    }
    EXPECT_TRUE(parse_multipart("--b0--", "b0").empty());
}

TEST(Multipart, MalformedBodiesAreRefusedByName) {
    expect_malformed("no delimiter at all", "no opening boundary");
    expect_malformed(part("a", "x"), "not followed by a boundary");  // truncated
    expect_malformed(
        "--b0" + crlf + "Content-Type: text/plain" + crlf + crlf + "x" + crlf + "--b0--",
        "no Content-Disposition");
    expect_malformed(
        "--b0" + crlf + "Content-Disposition: form-data" + crlf + crlf + "x" + crlf + "--b0--",
        "has no name");
    expect_malformed("--b0" + crlf + "Content-Disposition: attachment; name=\"a\"" + crlf + crlf +
                         "x" + crlf + "--b0--",
                     "not form-data");
    expect_malformed("--b0garbage" + crlf, "does not end in CRLF");
    expect_malformed("--b0" + crlf + "Content-Disposition: form-data; name=\"a\"" + crlf,
                     "headers do not end");
    std::string many;
    for (size_t i = 0; i <= max_multipart_parts; ++i)
        many += part("p" + std::to_string(i), "x");
    expect_malformed(many + "--b0--", "more than 16 parts");
}

TEST(Multipart, SubmissionWithoutTheFinalCrlfIsAccepted) {
    test::Harness h;
    const std::string token = h.new_session();
    const std::string body =
        part("request", json{{"model", "srvgg_x4"}}.dump(), "\r\nContent-Type: application/json") +
        part("image", test::png_bytes(test::test_image(9, 11, 2)),
             "; filename=\"in.png\"\r\nContent-Type: image/png") +
        "--b0--";  // no CRLF: as Node 18's fetch ends it
    auto res = h.client().Post("/v1/jobs", h.auth(token), body, "multipart/form-data; boundary=b0");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    EXPECT_EQ(h.wait_final(token, json::parse(res->body)["id"])["status"], "succeeded");

    auto no_boundary = h.client().Post("/v1/jobs", h.auth(token), body, "multipart/form-data");
    ASSERT_TRUE(no_boundary);
    EXPECT_EQ(no_boundary->status, 400) << no_boundary->body;
    auto truncated = h.client().Post("/v1/jobs", h.auth(token), body.substr(0, body.size() / 2),
                                     "multipart/form-data; boundary=b0");
    ASSERT_TRUE(truncated);
    EXPECT_EQ(truncated->status, 400) << truncated->body;
    EXPECT_NE(truncated->body.find("malformed multipart body"), std::string::npos);
}

}  // namespace
}  // namespace kiln::server
