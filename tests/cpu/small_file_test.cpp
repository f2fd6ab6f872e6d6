// core::read_small_file: a whole file under the cap, refusals naming the path.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/small_file.h"

namespace kiln::core {
namespace {

namespace fs = std::filesystem;

class SmallFile : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = fs::temp_directory_path() / "kiln-small-file-XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path write(const std::string& name, const std::string& text) {
        const fs::path p = dir_ / name;
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }

    fs::path dir_;
};

TEST_F(SmallFile, ReadsTheWholeFile) {
    const std::string text = std::string("{\"a\": 1}\n") + '\0' + "binary tail";
    EXPECT_EQ(read_small_file(write("config.json", text)), text);
    EXPECT_EQ(read_small_file(write("empty.json", "")), "");
}

TEST_F(SmallFile, RefusesAFileOverTheCap) {
    const fs::path p = write("big.json", std::string(101, 'x'));
    EXPECT_EQ(read_small_file(p, 101).size(), 101u);
    try {
        read_small_file(p, 100);
        FAIL() << "a file over the cap was read";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::BAD_FILE);
        EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("100 bytes"), std::string::npos) << e.what();
    }
}

TEST_F(SmallFile, AMissingFileIsAnIoError) {
    const fs::path p = dir_ / "missing.json";
    try {
        read_small_file(p);
        FAIL() << "a missing file was read";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::IO);
        EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace kiln::core
