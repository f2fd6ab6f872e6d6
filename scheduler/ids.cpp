#include "scheduler/ids.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>

#include "core/error.h"

namespace kiln::scheduler {

namespace {

std::string to_hex(const unsigned char* bytes, size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(n * 2, '0');
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    return out;
}

}  // namespace

std::string random_id() {
    std::array<unsigned char, 16> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
        throw core::Error(core::ErrorCode::INTERNAL, "random_id: RAND_bytes failed");
    return to_hex(bytes.data(), bytes.size());
}

uint64_t random_seed() {
    std::array<unsigned char, 8> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
        throw core::Error(core::ErrorCode::INTERNAL, "random_seed: RAND_bytes failed");
    uint64_t v = 0;
    for (unsigned char b : bytes)
        v = (v << 8) | b;
    return v;
}

bool is_valid_id(std::string_view text) {
    if (text.size() != 32)
        return false;
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
    return to_hex(digest.data(), digest.size());
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace kiln::scheduler
