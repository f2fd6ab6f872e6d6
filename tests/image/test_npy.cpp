// .npy round trips, interop with numpy-written files, and malformed headers.
#include <unistd.h>

#include <filesystem>

#include "image/npy.h"
#include "tests/image/test_support.h"

namespace kiln::image {
namespace {

using test::error_code_of;

// A v1 or v2 file around `header` (no padding added) followed by `data_bytes` zero bytes.
std::vector<uint8_t> npy_bytes(int major, const std::string& header, size_t data_bytes) {
    std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
    const int width = major == 1 ? 2 : 4;
    for (int i = 0; i < width; ++i) {
        out.push_back(static_cast<uint8_t>(header.size() >> (8 * i)));
    }
    out.insert(out.end(), header.begin(), header.end());
    out.resize(out.size() + data_bytes);
    return out;
}

TEST(Npy, F32RoundTripThroughAFile) {
    const auto dir = std::filesystem::temp_directory_path();
    const auto path = dir / ("kiln_npy_test_" + std::to_string(::getpid()) + ".npy");
    const std::vector<float> data = {0.f, -1.5f, 3.25f, 1e-30f, 7.f, 65535.f};
    write_npy(path, NpyArray::from_f32({2, 3}, data));
    const NpyArray read = read_npy(path);
    std::filesystem::remove(path);
    EXPECT_EQ(read.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(read.dtype, "<f4");
    EXPECT_EQ(read.as_f32(), data);
    EXPECT_EQ(read.element_count(), 6);
}

TEST(Npy, ShapesIncludingScalarAndEmpty) {
    const std::vector<std::vector<int64_t>> shapes = {{}, {5}, {0, 3}, {2, 1, 4}};
    for (const auto& shape : shapes) {
        int64_t count = 1;
        for (const int64_t dim : shape) {
            count *= dim;
        }
        std::vector<uint8_t> data(static_cast<size_t>(count));
        for (size_t i = 0; i < data.size(); ++i) {
            data[i] = static_cast<uint8_t>(i * 37);
        }
        const std::vector<uint8_t> file = npy_serialize(NpyArray::from_u8(shape, data));
        EXPECT_EQ((file.size() - data.size()) % 64, 0u) << "data not 64-byte aligned";
        const NpyArray read = npy_parse(file);
        EXPECT_EQ(read.shape, shape);
        EXPECT_EQ(read.dtype, "|u1");
        EXPECT_EQ(read.as_u8(), data);
    }
}

TEST(Npy, MatchesNumpyByteForByte) {
    // Written by numpy (tools/make_image_fixtures.py): our writer gives the same bytes.
    for (const char* file : {"gray16.expected.npy", "baseline.expected.npy"}) {
        const std::vector<uint8_t> bytes = test::fixture_bytes(file);
        const NpyArray array = npy_parse(bytes);
        EXPECT_EQ(array.shape.size(), 3u);
        EXPECT_EQ(npy_serialize(array), bytes) << file;
    }
}

TEST(Npy, TypedAccessorsCheckTheDtype) {
    const NpyArray u8 = NpyArray::from_u8({2}, std::vector<uint8_t>{1, 2});
    EXPECT_EQ(error_code_of([&] { u8.as_f32(); }), core::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(error_code_of([] {
                  NpyArray::from_f32({2, 2}, std::vector<float>(3));
              }),
              core::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(error_code_of([] { NpyArray::from_f32({-1}, std::vector<float>(1)); }),
              core::ErrorCode::INVALID_ARGUMENT);
    NpyArray bad = u8;
    bad.bytes.push_back(0);
    EXPECT_EQ(error_code_of([&] { npy_serialize(bad); }), core::ErrorCode::INVALID_ARGUMENT);
}

TEST(Npy, AcceptsVersion2AndSpacingVariants) {
    const NpyArray v2 =
        npy_parse(npy_bytes(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", 12));
    EXPECT_EQ(v2.shape, (std::vector<int64_t>{3}));
    const NpyArray tight =
        npy_parse(npy_bytes(1, "{\"shape\":(2,2),\"fortran_order\":False,\"descr\":\"|u1\"}", 4));
    EXPECT_EQ(tight.shape, (std::vector<int64_t>{2, 2}));
}

TEST(Npy, MalformedHeadersAreBadFile) {
    const std::string good_tail = "'fortran_order': False, 'shape': (2, 3), }\n";
    const std::vector<std::pair<std::string, std::vector<uint8_t>>> cases = {
        {"empty", {}},
        {"bad magic", {'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0, 0}},
        {"truncated length", {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 10}},
        {"header past the end",
         [] {
             auto b = npy_bytes(1, "{}", 0);
             b[8] = 200;
             return b;
         }()},
        {"header too long",
         [] {
             auto b = npy_bytes(2, "{}", 0);
             b[10] = 0x10;  // 1 MiB + 2
             return b;
         }()},
        {"data too short", npy_bytes(1, "{'descr': '<f4', " + good_tail, 23)},
        {"data too long", npy_bytes(1, "{'descr': '<f4', " + good_tail, 25)},
        {"missing shape", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False}", 4)},
        {"repeated key", npy_bytes(1, "{'descr': '<f4', 'descr': '<f4', " + good_tail, 24)},
        {"unknown key", npy_bytes(1, "{'descr': '<f4', 'x': 1, " + good_tail, 24)},
        {"unterminated dict", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False", 0)},
        {"unterminated string", npy_bytes(1, "{'descr': '<f4", 0)},
        {"negative dim",
         npy_bytes(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (-2,)}", 0)},
        {"huge dims", npy_bytes(1,
                                "{'descr': '<f4', 'fortran_order': False, "
                                "'shape': (4294967296, 4294967296, 4)}",
                                0)},
        {"dim overflow", npy_bytes(1,
                                   "{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (99999999999999999999,)}",
                                   0)},
        {"bool typo", npy_bytes(1, "{'descr': '<f4', 'fortran_order': false, 'shape': ()}", 4)},
        {"trailing junk", npy_bytes(1, "{'descr': '<f4', " + good_tail + "x", 24)},
    };
    for (const auto& [name, bytes] : cases) {
        EXPECT_EQ(error_code_of([&] { npy_parse(bytes); }), core::ErrorCode::BAD_FILE) << name;
    }
}

TEST(Npy, WellFormedButUnsupported) {
    const std::string tail = "'shape': (2,), }\n";
    EXPECT_EQ(error_code_of([&] {
                  npy_parse(npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, " + tail, 16));
              }),
              core::ErrorCode::UNSUPPORTED);
    EXPECT_EQ(error_code_of([&] {
                  npy_parse(npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, " + tail, 8));
              }),
              core::ErrorCode::UNSUPPORTED);
    EXPECT_EQ(error_code_of([&] {
                  npy_parse(npy_bytes(3, "{'descr': '<f4', 'fortran_order': False, " + tail, 8));
              }),
              core::ErrorCode::UNSUPPORTED);
}

}  // namespace
}  // namespace kiln::image
