// Bounded mutation loop: random byte flips and truncations of small good files must only
// ever end in kiln::core::Error (or load), never another exception or a crash.
#include <fstream>
#include <random>

#include "tests/weights/test_support.h"
#include "weights/arch.h"
#include "weights/ncnn.h"
#include "weights/ncnn_import.h"
#include "weights/pth.h"
#include "weights/safetensors.h"

namespace kiln::weights {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
    std::string data(fs::file_size(p), '\0');
    std::ifstream(p, std::ios::binary).read(data.data(), static_cast<std::streamsize>(data.size()));
    return data;
}

void write_all(const fs::path& p, const std::string& data) {
    std::ofstream(p, std::ios::binary | std::ios::trunc)
        .write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string mutate(std::string data, std::mt19937& rng) {
    const int kind = static_cast<int>(rng() % 3);
    if (kind != 1 && !data.empty()) {  // flip 1-8 bytes
        const int flips = 1 + static_cast<int>(rng() % 8);
        for (int i = 0; i < flips; ++i)
            data[rng() % data.size()] = static_cast<char>(rng());
    }
    if (kind != 0 && !data.empty())
        data.resize(rng() % data.size());  // truncate
    return data;
}

// Runs `load` on `iterations` mutants of `original` written to `target`.
void fuzz(const std::string& original,
          const fs::path& target,
          uint32_t seed,
          int iterations,
          const std::function<void()>& load) {
    std::mt19937 rng(seed);
    int errors = 0;
    for (int i = 0; i < iterations; ++i) {
        write_all(target, mutate(original, rng));
        try {
            load();
        } catch (const core::Error&) {
            ++errors;
        } catch (const std::exception& e) {
            ADD_FAILURE() << "iteration " << i << ": non-kiln exception: " << e.what();
        }
    }
    EXPECT_GT(errors, 0);
}

class Fuzz : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("kiln_fuzz_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(Fuzz, Pth) {
    const fs::path p = dir_ / "m.pth";
    fuzz(read_all(test::fixture("srvgg_x4.pth")), p, 1, 300,
         [&] { detect_architecture(load_pth(p)); });
}

TEST_F(Fuzz, LegacyPth) {
    const fs::path p = dir_ / "m.pth";
    fuzz(read_all(test::fixture("srvgg_x2_legacy.pth")), p, 2, 300,
         [&] { detect_architecture(load_pth(p)); });
}

TEST_F(Fuzz, Safetensors) {
    const fs::path p = dir_ / "m.safetensors";
    fuzz(read_all(test::fixture("srvgg_x4_f16.safetensors")), p, 3, 300,
         [&] { detect_architecture(load_safetensors(p)); });
}

TEST_F(Fuzz, NcnnParam) {
    const fs::path param = dir_ / "m.param";
    const fs::path bin = dir_ / "m.bin";
    write_all(bin, read_all(test::fixture("rrdb_x4_ncnn.bin")));
    fuzz(read_all(test::fixture("rrdb_x4_ncnn.param")), param, 4, 300,
         [&] { import_ncnn(load_ncnn(param, bin)); });
}

TEST_F(Fuzz, NcnnBin) {
    const fs::path param = dir_ / "m.param";
    const fs::path bin = dir_ / "m.bin";
    write_all(param, read_all(test::fixture("srvgg_x4_ncnn.param")));
    fuzz(read_all(test::fixture("srvgg_x4_ncnn.bin")), bin, 5, 300,
         [&] { import_ncnn(load_ncnn(param, bin)); });
}

}  // namespace
}  // namespace kiln::weights
