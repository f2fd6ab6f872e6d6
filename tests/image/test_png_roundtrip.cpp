// encode_png -> decode_image is lossless for every layout kiln writes.
#include <random>

#include "image/image.h"
#include "tests/image/test_support.h"

namespace kiln::image {
namespace {

Image random_image(int width, int height, int channels, int bit_depth, uint32_t seed) {
    Image image;
    image.width = width;
    image.height = height;
    image.channels = channels;
    image.bit_depth = bit_depth;
    image.samples.resize(image.sample_count());
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> value(0, image.max_value());
    for (uint16_t& sample : image.samples) {
        sample = static_cast<uint16_t>(value(rng));
    }
    // Extremes always present.
    image.samples.front() = 0;
    image.samples.back() = static_cast<uint16_t>(image.max_value());
    return image;
}

struct Layout {
    int channels;
    int bit_depth;
};

void PrintTo(const Layout& layout, std::ostream* out) {
    *out << layout.channels << " channels, " << layout.bit_depth << "-bit";
}

std::string layout_name(const ::testing::TestParamInfo<Layout>& param_info) {
    std::string name = "c";
    name += std::to_string(param_info.param.channels);
    name += "_";
    name += std::to_string(param_info.param.bit_depth);
    name += "bit";
    return name;
}

class PngRoundTrip : public ::testing::TestWithParam<Layout> {};

TEST_P(PngRoundTrip, DecodesToTheSameSamples) {
    const auto [channels, bit_depth] = GetParam();
    for (const int level : {0, 3, 9}) {
        const Image image = random_image(7, 5, channels, bit_depth, 17 + channels);
        const std::vector<uint8_t> png = encode_png(image, level);
        ASSERT_EQ(sniff_format(png), ImageFormat::PNG);

        const ImageHeader header = read_header(png);
        EXPECT_EQ(header.format, ImageFormat::PNG);
        EXPECT_EQ(header.width, 7);
        EXPECT_EQ(header.height, 5);
        EXPECT_EQ(header.channels, channels);
        EXPECT_EQ(header.bit_depth, bit_depth);

        const Image decoded = decode_image(png);
        EXPECT_EQ(decoded.width, image.width);
        EXPECT_EQ(decoded.height, image.height);
        EXPECT_EQ(decoded.channels, image.channels);
        EXPECT_EQ(decoded.bit_depth, image.bit_depth);
        EXPECT_EQ(decoded.samples, image.samples) << "level " << level;
    }
}

INSTANTIATE_TEST_SUITE_P(AllLayouts,
                         PngRoundTrip,
                         ::testing::Values(Layout{1, 8},
                                           Layout{2, 8},
                                           Layout{3, 8},
                                           Layout{4, 8},
                                           Layout{1, 16},
                                           Layout{2, 16},
                                           Layout{3, 16},
                                           Layout{4, 16}),
                         layout_name);

TEST(PngEncode, OnePixelAndOneLongRow) {
    for (const auto& [w, h] : {std::pair{1, 1}, std::pair{1000, 1}, std::pair{1, 300}}) {
        const Image image = random_image(w, h, 3, 8, 5);
        EXPECT_EQ(decode_image(encode_png(image)).samples, image.samples) << w << "x" << h;
    }
}

TEST(PngEncode, HigherCompressionIsNotLarger) {
    Image image = random_image(64, 64, 3, 8, 9);
    for (size_t i = 0; i < image.samples.size(); ++i) {
        image.samples[i] = static_cast<uint16_t>((i / 3) % 64);  // compressible
    }
    EXPECT_LE(encode_png(image, 9).size(), encode_png(image, 0).size());
}

TEST(PngEncode, RejectsInconsistentImages) {
    using test::error_code_of;
    const Image good = random_image(4, 3, 3, 8, 1);
    auto with = [&](auto change) {
        Image image = good;
        change(image);
        return error_code_of([&] { encode_png(image); });
    };
    EXPECT_EQ(with([](Image& i) { i.width = 0; }), core::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(with([](Image& i) { i.channels = 5; }), core::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(with([](Image& i) { i.bit_depth = 12; }), core::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(with([](Image& i) { i.samples.pop_back(); }), core::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(with([](Image& i) { i.samples[5] = 256; }), core::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(error_code_of([&] { encode_png(good, 10); }), core::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(error_code_of([&] { encode_png(good, -1); }), core::ErrorCode::INVALID_ARGUMENT);
}

TEST(ImageStruct, Helpers) {
    Image image;
    EXPECT_EQ(image.sample_count(), 0u);
    image.width = 3;
    image.height = 2;
    image.channels = 4;
    EXPECT_EQ(image.sample_count(), 24u);
    EXPECT_TRUE(image.has_alpha());
    EXPECT_EQ(image.max_value(), 255);
    image.bit_depth = 16;
    EXPECT_EQ(image.max_value(), 65535);
    image.channels = 3;
    EXPECT_FALSE(image.has_alpha());
}

}  // namespace
}  // namespace kiln::image
