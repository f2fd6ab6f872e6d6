#include "weights/registry.h"

#include <chrono>
#include <thread>

#include "tests/weights/test_support.h"

namespace kiln::weights {
namespace {

namespace fs = std::filesystem;
using test::fixture;

class RegistryTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ =
            fs::temp_directory_path() /
            ("kiln_registry_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
        fs::create_directories(dir_);
        copy("rrdb_x4_basicsr.pth", "rrdb.pth");
        copy("srvgg_x4_f16.safetensors", "vgg.safetensors");
        copy("srvgg_x4to2_ncnn.param", "anime.param");
        copy("srvgg_x4to2_ncnn.bin", "anime.bin");
        copy("srvgg_x4_ncnn.param", "orphan.param");  // no .bin: not a model
        copy("evil_system.pth", "evil.pth");
        copy("views.pth", "notes.txt");  // ignored extension
    }
    void TearDown() override { fs::remove_all(dir_); }
    void copy(const std::string& from, const std::string& to) {
        fs::copy_file(fixture(from), dir_ / to);
    }

    fs::path dir_;
};

TEST_F(RegistryTest, ListsEveryModelWithDetails) {
    ModelRegistry reg(dir_);
    const auto models = reg.list();
    ASSERT_EQ(models.size(), 4u);
    EXPECT_EQ(models[0].name, "anime");
    EXPECT_EQ(models[0].format, "ncnn");
    EXPECT_EQ(models[0].paths.size(), 2u);
    EXPECT_EQ(models[0].arch_name, "SRVGGNetCompact");
    EXPECT_EQ(models[0].scale, 2);
    EXPECT_EQ(models[0].stored_dtype, "F16");  // conv weights dominate
    EXPECT_EQ(models[1].name, "evil");
    EXPECT_TRUE(models[1].arch_name.empty());
    EXPECT_NE(models[1].error.find("refused global 'posix.system'"), std::string::npos)
        << models[1].error;
    EXPECT_NE(models[1].error.find("bad_file"), std::string::npos) << models[1].error;
    EXPECT_EQ(models[2].name, "rrdb");
    EXPECT_EQ(models[2].format, "pth");
    EXPECT_EQ(models[2].arch_name, "RRDBNet");
    EXPECT_EQ(models[2].scale, 4);
    EXPECT_EQ(models[2].stored_dtype, "F32");
    EXPECT_GT(models[2].param_count, 0);
    EXPECT_TRUE(models[2].error.empty());
    EXPECT_EQ(models[3].name, "vgg");
    EXPECT_EQ(models[3].format, "safetensors");
    EXPECT_EQ(models[3].stored_dtype, "F16");
}

TEST_F(RegistryTest, LoadByNameAndNotFound) {
    ModelRegistry reg(dir_);
    EXPECT_EQ(reg.load("rrdb").arch_name, "RRDBNet");
    test::expect_error([&] { reg.load("nope"); }, core::ErrorCode::NOT_FOUND,
                       {"'nope'", "anime, evil, rrdb, vgg"});
    test::expect_error([&] { reg.load("evil"); }, core::ErrorCode::BAD_FILE,
                       {"evil.pth", "posix.system"});
}

TEST_F(RegistryTest, CacheFollowsFileChanges) {
    ModelRegistry reg(dir_);
    EXPECT_EQ(reg.list()[2].arch_name, "RRDBNet");
    fs::remove(dir_ / "rrdb.pth");
    copy("srvgg_x2_params.pth", "rrdb.pth");  // same name, new content, size and mtime
    const auto models = reg.list();
    EXPECT_EQ(models[2].arch_name, "SRVGGNetCompact");
    EXPECT_EQ(models[2].scale, 2);
}

TEST_F(RegistryTest, ConcurrentListIsSafe) {
    ModelRegistry reg(dir_);
    std::vector<std::thread> threads;
    std::vector<size_t> counts(4);
    for (size_t i = 0; i < counts.size(); ++i) {
        threads.emplace_back(
            [&, i] { counts[i] = reg.list().size() + (reg.load("vgg").scale == 4 ? 0 : 100); });
    }
    for (auto& t : threads)
        t.join();
    for (size_t c : counts)
        EXPECT_EQ(c, 4u);
}

// The listing is reused while the folder's and its subfolders' mtimes stay (settled, more
// than the clock's resolution in the past), and read again when one moves.
TEST_F(RegistryTest, ListsAgainOnlyWhenAFolderChanged) {
    const auto hour_ago = fs::file_time_type::clock::now() - std::chrono::hours(1);
    fs::create_directories(dir_ / "later");  // a subfolder that is no model yet
    fs::last_write_time(dir_ / "later", hour_ago);
    fs::last_write_time(dir_, hour_ago);
    ModelRegistry reg(dir_);
    ASSERT_EQ(reg.list().size(), 4u);

    // A file renamed into place with the folder's mtime put back: the listing is reused (a
    // rescan per request would see it; the cache does not read the folder again).
    copy("srvgg_x4_f16.safetensors", "hidden.safetensors");
    fs::last_write_time(dir_, hour_ago);
    EXPECT_EQ(reg.list().size(), 4u);
    EXPECT_THROW(reg.locate("hidden"), core::Error);

    // The folder's mtime moves: listed again.
    fs::last_write_time(dir_, hour_ago + std::chrono::minutes(1));
    EXPECT_EQ(reg.list().size(), 5u);
    EXPECT_EQ(reg.locate("hidden").format, "safetensors");

    // A diffusers folder filled after it was created: its own mtime moves, the parent's not.
    const fs::path unet = fixture("../diffusion/fashion-unet");
    ASSERT_TRUE(fs::is_directory(unet)) << unet;
    fs::copy(unet, dir_ / "later", fs::copy_options::recursive);
    fs::last_write_time(dir_ / "later", hour_ago + std::chrono::minutes(2));
    EXPECT_EQ(reg.list().size(), 6u);
    EXPECT_EQ(reg.locate("later").task, "generate");
}

TEST(Registry, MissingDirectoryIsIoError) {
    ModelRegistry reg("/nonexistent/kiln/models");
    test::expect_error([&] { reg.list(); }, core::ErrorCode::IO, {"/nonexistent/kiln/models"});
}

}  // namespace
}  // namespace kiln::weights
