// Decoding the committed fixtures (tools/make_image_fixtures.py) matches the expected pixels.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "image/image.h"
#include "image/npy.h"
#include "tests/image/test_support.h"

namespace kiln::image {
namespace {

struct Fixture {
    const char* file;
    ImageFormat format;
    int channels;
    int bit_depth;
};

void PrintTo(const Fixture& fixture, std::ostream* out) {
    *out << fixture.file;
}

std::string fixture_name(const ::testing::TestParamInfo<Fixture>& info) {
    std::string name = info.param.file;
    std::replace(name.begin(), name.end(), '.', '_');
    return name;
}

// Expected samples as ints: .expected.npy holds uint8, or float32 for 16-bit results.
std::vector<int> expected_samples(const std::string& file, std::vector<int64_t>& shape) {
    const NpyArray array =
        read_npy(test::fixture_path(file.substr(0, file.rfind('.')) + ".expected.npy"));
    shape = array.shape;
    std::vector<int> values;
    if (array.dtype == "|u1") {
        for (const uint8_t v : array.as_u8()) {
            values.push_back(v);
        }
    } else {
        for (const float v : array.as_f32()) {
            values.push_back(static_cast<int>(v));
        }
    }
    return values;
}

class DecodeFixture : public ::testing::TestWithParam<Fixture> {};

TEST_P(DecodeFixture, MatchesExpectedPixels) {
    const Fixture& fixture = GetParam();
    const std::vector<uint8_t> bytes = test::fixture_bytes(fixture.file);
    ASSERT_EQ(sniff_format(bytes), fixture.format);

    std::vector<int64_t> shape;
    const std::vector<int> expected = expected_samples(fixture.file, shape);
    ASSERT_EQ(shape.size(), 3u);

    const ImageHeader header = read_header(bytes);
    EXPECT_EQ(header.format, fixture.format);
    EXPECT_EQ(header.height, shape[0]);
    EXPECT_EQ(header.width, shape[1]);
    EXPECT_EQ(header.channels, fixture.channels);
    EXPECT_EQ(header.bit_depth, fixture.bit_depth);

    const Image image = decode_image(bytes);
    EXPECT_EQ(image.height, shape[0]);
    EXPECT_EQ(image.width, shape[1]);
    EXPECT_EQ(image.channels, shape[2]);
    EXPECT_EQ(image.channels, fixture.channels);
    EXPECT_EQ(image.bit_depth, fixture.bit_depth);
    ASSERT_EQ(image.samples.size(), expected.size());
    // Exact for JPEG too: PIL decodes with the same libjpeg-turbo and default settings
    // (islow IDCT, fancy upsampling).
    int mismatches = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        if (image.samples[i] != expected[i] && ++mismatches <= 5) {
            ADD_FAILURE() << fixture.file << " sample " << i << ": got " << image.samples[i]
                          << ", expected " << expected[i];
        }
    }
    EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures,
                         DecodeFixture,
                         ::testing::Values(Fixture{"palette4_trns.png", ImageFormat::PNG, 4, 8},
                                           Fixture{"palette8.png", ImageFormat::PNG, 3, 8},
                                           Fixture{"gray1.png", ImageFormat::PNG, 1, 8},
                                           Fixture{"gray2.png", ImageFormat::PNG, 1, 8},
                                           Fixture{"gray4.png", ImageFormat::PNG, 1, 8},
                                           Fixture{"gray8_trns.png", ImageFormat::PNG, 2, 8},
                                           Fixture{"gray_alpha8.png", ImageFormat::PNG, 2, 8},
                                           Fixture{"gray16.png", ImageFormat::PNG, 1, 16},
                                           Fixture{"rgb16.png", ImageFormat::PNG, 3, 16},
                                           Fixture{"rgba16.png", ImageFormat::PNG, 4, 16},
                                           Fixture{"interlaced_rgb8.png", ImageFormat::PNG, 3, 8},
                                           Fixture{"interlaced_gray2.png", ImageFormat::PNG, 1, 8},
                                           Fixture{"interlaced_rgba16.png", ImageFormat::PNG, 4,
                                                   16},
                                           Fixture{"baseline.jpg", ImageFormat::JPEG, 3, 8},
                                           Fixture{"progressive.jpg", ImageFormat::JPEG, 3, 8},
                                           Fixture{"gray.jpg", ImageFormat::JPEG, 1, 8}),
                         fixture_name);

TEST(DecodeJpeg, CmykIsUnsupported) {
    const std::vector<uint8_t> bytes = test::fixture_bytes("cmyk.jpg");
    EXPECT_EQ(test::error_code_of([&] { decode_image(bytes); }), core::ErrorCode::UNSUPPORTED);
    EXPECT_EQ(test::error_code_of([&] { read_header(bytes); }), core::ErrorCode::UNSUPPORTED);
    EXPECT_NE(test::error_message_of([&] { decode_image(bytes); }).find("CMYK"), std::string::npos);
}

TEST(DecodeLimitsTest, AppliedToPngAndJpeg) {
    for (const char* file : {"interlaced_rgb8.png", "baseline.jpg"}) {
        const std::vector<uint8_t> bytes = test::fixture_bytes(file);
        const ImageHeader header = read_header(bytes);
        const int64_t pixels = int64_t{header.width} * header.height;
        EXPECT_NO_THROW(decode_image(bytes, {.max_pixels = pixels, .max_side = header.width}));
        EXPECT_EQ(test::error_code_of(
                      [&] { decode_image(bytes, {.max_pixels = pixels - 1, .max_side = 1000}); }),
                  core::ErrorCode::TOO_LARGE)
            << file;
        EXPECT_EQ(test::error_code_of(
                      [&] { decode_image(bytes, {.max_pixels = 1000000, .max_side = 10}); }),
                  core::ErrorCode::TOO_LARGE)
            << file;
    }
}

TEST(SniffFormat, MagicBytes) {
    const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const std::vector<uint8_t> jpeg = {0xff, 0xd8, 0xff, 0xe0};
    EXPECT_EQ(sniff_format(png), ImageFormat::PNG);
    EXPECT_EQ(sniff_format(jpeg), ImageFormat::JPEG);
    EXPECT_EQ(sniff_format(std::span(png).first(7)), ImageFormat::UNKNOWN);
    EXPECT_EQ(sniff_format(std::span(jpeg).first(2)), ImageFormat::UNKNOWN);
    EXPECT_EQ(sniff_format({}), ImageFormat::UNKNOWN);
}

}  // namespace
}  // namespace kiln::image
