// Hostile input: oversized headers, truncation, garbage, and a bounded mutation fuzz loop.
// Every failure must be a kiln::core::Error with the right code; nothing may crash.
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <random>

#include "image/image.h"
#include "tests/image/test_support.h"

namespace kiln::image {
namespace {

using test::error_code_of;
using test::error_message_of;
using test::fixture_bytes;

void put_be32(std::vector<uint8_t>& out, uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) {
        out.push_back(static_cast<uint8_t>(value >> shift));
    }
}

void append_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
    put_be32(out, static_cast<uint32_t>(data.size()));
    const size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    put_be32(out, static_cast<uint32_t>(crc32(0, out.data() + start, out.size() - start)));
}

// A PNG whose IHDR (valid CRC) claims width x height RGB, with a token IDAT.
std::vector<uint8_t> png_with_ihdr(uint32_t width, uint32_t height) {
    std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<uint8_t> ihdr;
    put_be32(ihdr, width);
    put_be32(ihdr, height);
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
    append_chunk(out, "IHDR", ihdr);
    append_chunk(out, "IDAT", {0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1});  // zlib of one 0 byte
    append_chunk(out, "IEND", {});
    return out;
}

// Recomputes every chunk CRC so that mutations reach the decoders instead of the CRC check.
void png_fix_crcs(std::vector<uint8_t>& png) {
    size_t pos = 8;
    while (pos + 12 <= png.size()) {
        const uint32_t length = (uint32_t{png[pos]} << 24) | (uint32_t{png[pos + 1]} << 16) |
                                (uint32_t{png[pos + 2]} << 8) | png[pos + 3];
        if (length > png.size() - pos - 12) {
            return;
        }
        const uint32_t crc = static_cast<uint32_t>(crc32(0, png.data() + pos + 4, length + 4));
        for (int i = 0; i < 4; ++i) {
            png[pos + 8 + length + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
        }
        pos += 12 + length;
    }
}

TEST(Hostile, HugeIhdrFailsFastAsTooLarge) {
    const std::vector<uint8_t> bytes = fixture_bytes("huge_ihdr.png");
    const ImageHeader header = read_header(bytes);  // the header alone is fine
    EXPECT_EQ(header.width, 100000);
    EXPECT_EQ(header.height, 100000);

    const auto start = std::chrono::steady_clock::now();
    const std::string message = error_message_of([&] { decode_image(bytes); });
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(error_code_of([&] { decode_image(bytes); }), core::ErrorCode::TOO_LARGE);
    EXPECT_NE(message.find("100000x100000"), std::string::npos) << message;
    EXPECT_NE(message.find("32768"), std::string::npos) << message;
    // Allocating 30 GB of pixels would fail or take far longer than this.
    EXPECT_LT(elapsed, std::chrono::milliseconds(200));
}

TEST(Hostile, IhdrOverThePixelLimitOnly) {
    // Each side under max_side, the product over max_pixels.
    const std::vector<uint8_t> bytes = png_with_ihdr(32768, 32768);
    const std::string message = error_message_of([&] { decode_image(bytes); });
    EXPECT_EQ(error_code_of([&] { decode_image(bytes); }), core::ErrorCode::TOO_LARGE);
    EXPECT_NE(message.find(std::to_string(64LL << 20)), std::string::npos) << message;
}

TEST(Hostile, IhdrAtThePngMaximumIsTooLargeNotBadFile) {
    const std::vector<uint8_t> bytes = png_with_ihdr(0x7fffffff, 1);
    EXPECT_EQ(error_code_of([&] { decode_image(bytes); }), core::ErrorCode::TOO_LARGE);
}

TEST(Hostile, IhdrWithZeroWidthIsBadFile) {
    EXPECT_EQ(error_code_of([&] { decode_image(png_with_ihdr(0, 10)); }),
              core::ErrorCode::BAD_FILE);
}

TEST(Hostile, IhdrWithBadCrcIsBadFile) {
    std::vector<uint8_t> bytes = png_with_ihdr(16, 16);
    bytes[8 + 8 + 13] ^= 0xff;  // first CRC byte of IHDR
    const std::string message = error_message_of([&] { decode_image(bytes); });
    EXPECT_EQ(error_code_of([&] { decode_image(bytes); }), core::ErrorCode::BAD_FILE);
    EXPECT_NE(message.find("CRC"), std::string::npos) << message;
}

// Every cut, down to a missing end marker (IEND, EOI), is a truncated file.
TEST(Hostile, TruncatedPngIsBadFile) {
    for (const char* file : {"interlaced_rgb8.png", "gray16.png", "palette4_trns.png"}) {
        const std::vector<uint8_t> bytes = fixture_bytes(file);
        for (size_t length = 8; length < bytes.size(); ++length) {
            const std::span<const uint8_t> cut(bytes.data(), length);
            ASSERT_EQ(error_code_of([&] { decode_image(cut); }), core::ErrorCode::BAD_FILE)
                << file << " cut at " << length;
        }
    }
    const std::vector<uint8_t> bytes = fixture_bytes("gray4.png");
    const std::string message =
        error_message_of([&] { decode_image(std::span(bytes).first(bytes.size() / 2)); });
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST(Hostile, TruncatedJpegIsBadFile) {
    for (const char* file : {"baseline.jpg", "progressive.jpg", "gray.jpg"}) {
        const std::vector<uint8_t> bytes = fixture_bytes(file);
        for (size_t length = 3; length < bytes.size(); ++length) {
            const std::span<const uint8_t> cut(bytes.data(), length);
            ASSERT_EQ(error_code_of([&] { decode_image(cut); }), core::ErrorCode::BAD_FILE)
                << file << " cut at " << length;
        }
    }
    const std::vector<uint8_t> bytes = fixture_bytes("baseline.jpg");
    const std::string message =
        error_message_of([&] { decode_image(std::span(bytes).first(bytes.size() / 2)); });
    EXPECT_NE(message.find("Premature end"), std::string::npos) << message;
}

TEST(Hostile, TrailingBytesAfterTheEndMarkerAreIgnored) {
    for (const char* file : {"gray2.png", "baseline.jpg"}) {
        std::vector<uint8_t> bytes = fixture_bytes(file);
        const Image expected = decode_image(bytes);
        bytes.insert(bytes.end(), {1, 2, 3, 4, 5, 6, 7});
        EXPECT_EQ(decode_image(bytes).samples, expected.samples) << file;
    }
}

TEST(Hostile, RandomBytesAreUnsupported) {
    std::mt19937 rng(7);
    std::vector<uint8_t> bytes(1000);
    for (uint8_t& b : bytes) {
        b = static_cast<uint8_t>(rng());
    }
    bytes[0] = 0x42;
    EXPECT_EQ(error_code_of([&] { decode_image(bytes); }), core::ErrorCode::UNSUPPORTED);
    EXPECT_EQ(error_code_of([&] { read_header(bytes); }), core::ErrorCode::UNSUPPORTED);
}

TEST(Hostile, EmptyAndMagicOnly) {
    EXPECT_EQ(error_code_of([] { decode_image({}); }), core::ErrorCode::BAD_FILE);
    EXPECT_EQ(error_code_of([] { read_header({}); }), core::ErrorCode::BAD_FILE);
    const std::vector<uint8_t> png_magic = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const std::vector<uint8_t> jpeg_magic = {0xff, 0xd8, 0xff};
    EXPECT_EQ(error_code_of([&] { decode_image(png_magic); }), core::ErrorCode::BAD_FILE);
    EXPECT_EQ(error_code_of([&] { decode_image(jpeg_magic); }), core::ErrorCode::BAD_FILE);
    EXPECT_EQ(error_code_of([&] { read_header(jpeg_magic); }), core::ErrorCode::BAD_FILE);
}

// Random byte flips, truncations and both, over every fixture; PNG CRCs are repaired half of
// the time so that the damage reaches zlib and the unfilterer. Only kiln::core::Error may escape.
// KILN_FUZZ_ITERATIONS=N runs a longer soak (e.g. under a sanitizer build).
TEST(Hostile, MutationFuzzOnlyThrowsKilnErrors) {
    const std::vector<std::string> files = {"palette4_trns.png",
                                            "palette8.png",
                                            "gray1.png",
                                            "gray2.png",
                                            "gray4.png",
                                            "gray8_trns.png",
                                            "gray_alpha8.png",
                                            "gray16.png",
                                            "rgb16.png",
                                            "rgba16.png",
                                            "interlaced_rgb8.png",
                                            "interlaced_gray2.png",
                                            "interlaced_rgba16.png",
                                            "baseline.jpg",
                                            "progressive.jpg",
                                            "gray.jpg",
                                            "cmyk.jpg"};
    std::vector<std::vector<uint8_t>> originals;
    for (const std::string& file : files) {
        originals.push_back(fixture_bytes(file));
    }
    // Tight limits: a mutated header may claim a large, still legal, size.
    const DecodeLimits limits{.max_pixels = 1 << 20, .max_side = 4096};
    const char* override = std::getenv("KILN_FUZZ_ITERATIONS");
    const int iterations = override != nullptr ? std::atoi(override) : 500;
    std::mt19937 rng(20240601);
    int decoded = 0, rejected = 0;
    for (int iteration = 0; iteration < iterations; ++iteration) {
        const size_t which = rng() % originals.size();
        std::vector<uint8_t> bytes = originals[which];
        const uint32_t mode = rng() % 3;  // 0 flips, 1 truncation, 2 both
        if (mode != 1) {
            const int flips = 1 + static_cast<int>(rng() % 8);
            for (int i = 0; i < flips; ++i) {
                bytes[rng() % bytes.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
            }
        }
        if (mode != 0) {
            bytes.resize(rng() % bytes.size());
        }
        if (files[which].ends_with(".png") && rng() % 2 == 0) {
            png_fix_crcs(bytes);
        }
        try {
            read_header(bytes);
        } catch (const core::Error&) {
        }
        try {
            const Image image = decode_image(bytes, limits);
            EXPECT_EQ(image.samples.size(), image.sample_count());
            ++decoded;
        } catch (const core::Error&) {
            ++rejected;
        } catch (const std::exception& error) {
            FAIL() << "iteration " << iteration << " on " << files[which] << ": non-kiln exception "
                   << error.what();
        }
    }
    EXPECT_EQ(decoded + rejected, iterations);
    RecordProperty("decoded", decoded);
    RecordProperty("rejected", rejected);
}

}  // namespace
}  // namespace kiln::image
