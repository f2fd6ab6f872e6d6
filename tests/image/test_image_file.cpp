// read_image_file and write_png_file: file errors and the atomic write.
#include <unistd.h>

#include <filesystem>

#include "image/image.h"
#include "tests/image/test_support.h"

namespace kiln::image {
namespace {

namespace fs = std::filesystem;

class ImageFile : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("kiln_image_test_" + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path dir_;
};

Image small_image() {
    Image image;
    image.width = 3;
    image.height = 2;
    image.channels = 2;
    image.bit_depth = 16;
    image.samples = {0, 1, 2, 300, 4000, 50000, 65535, 7, 8, 9, 10, 11};
    return image;
}

TEST_F(ImageFile, WriteThenReadLeavesNoTemporaryFiles) {
    const fs::path path = dir_ / "out.png";
    write_png_file(path, small_image());
    write_png_file(path, small_image());  // replaces an existing file
    EXPECT_EQ(read_image_file(path).samples, small_image().samples);
    int entries = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_)) {
        ++entries;
    }
    EXPECT_EQ(entries, 1);
}

TEST_F(ImageFile, FailedEncodeLeavesTheOldFile) {
    const fs::path path = dir_ / "out.png";
    write_png_file(path, small_image());
    Image bad = small_image();
    bad.samples.pop_back();
    EXPECT_EQ(test::error_code_of([&] { write_png_file(path, bad); }),
              core::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(read_image_file(path).samples, small_image().samples);
}

TEST_F(ImageFile, Errors) {
    EXPECT_EQ(test::error_code_of([&] { read_image_file(dir_ / "missing.png"); }),
              core::ErrorCode::NOT_FOUND);
    EXPECT_EQ(test::error_code_of([&] { read_image_file(dir_); }), core::ErrorCode::IO);
    EXPECT_EQ(test::error_code_of([&] { write_png_file(dir_ / "no" / "such.png", small_image()); }),
              core::ErrorCode::NOT_FOUND);
    const fs::path fixture = test::fixture_path("baseline.jpg");
    EXPECT_EQ(test::error_code_of([&] { read_image_file(fixture, {.max_file_bytes = 100}); }),
              core::ErrorCode::TOO_LARGE);
}

TEST_F(ImageFile, DecodeErrorsNameTheFile) {
    const fs::path path = dir_ / "junk.png";
    const std::vector<uint8_t> junk = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0};
    {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(junk.data()), static_cast<long>(junk.size()));
    }
    const std::string message = test::error_message_of([&] { read_image_file(path); });
    EXPECT_NE(message.find("junk.png"), std::string::npos) << message;
    EXPECT_EQ(test::error_code_of([&] { read_image_file(path); }), core::ErrorCode::BAD_FILE);
}

}  // namespace
}  // namespace kiln::image
