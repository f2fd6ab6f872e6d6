// Limits of the HTTP layer that GET /v1/limits reports. Those marked "cpp-httplib" are fixed
// when Debian's shared library is built (0.11.4); the server sets the timeouts itself so that
// what it reports is what it runs with.
#pragma once

#include <algorithm>
#include <cstddef>

namespace kiln::server::http_limits {

constexpr size_t header_line_bytes = 8192;  // cpp-httplib: a longer header line gets 400
constexpr size_t uri_bytes = 8192;          // cpp-httplib: a longer request target gets 414
constexpr int read_timeout_s = 5;           // a request's bytes must keep arriving
constexpr int write_timeout_s = 5;
constexpr int keep_alive_timeout_s = 5;  // an idle kept-alive connection is closed
constexpr size_t idempotency_key_bytes = 255;

// cpp-httplib serves a connection on one pool thread for the connection's whole life, so an
// open GET /v1/events holds a thread until the client leaves. Streams may hold all threads
// but a reserve; past that, a new stream gets 503 with Retry-After and the client polls.
inline size_t event_streams(int http_threads) {
    const int reserve = std::max(4, http_threads / 4);
    return static_cast<size_t>(std::max(1, http_threads - reserve));
}

}  // namespace kiln::server::http_limits
