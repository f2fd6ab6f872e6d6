// Random ids and tokens (128-bit, lowercase hex) and the token hashing that keeps only a
// SHA-256 of each token at rest.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::scheduler {

// 32 lowercase hex characters from the OS CSPRNG (OpenSSL RAND_bytes).
std::string random_id();
// A random 64-bit value from the same source (default seeds of generation jobs).
uint64_t random_seed();
// True when `text` has the shape random_id() returns; anything else never reaches storage.
bool is_valid_id(std::string_view text);
// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
// Equal-length comparison whose time does not depend on where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace kiln::scheduler
