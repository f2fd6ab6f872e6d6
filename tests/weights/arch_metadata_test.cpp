// `kiln convert`'s output: canonical tensors and the architecture block, read back with what
// detection alone cannot know (a CUNet's program, SRVGGNetCompact's activation and resize),
// and refused when the block disagrees with the tensors.
#include <unistd.h>

#include <filesystem>

#include "tests/weights/test_support.h"
#include "weights/arch_metadata.h"
#include "weights/registry.h"
#include "weights/safetensors.h"
#include "weights/safetensors_writer.h"
#include "weights/unet_gan_layers.h"

namespace kiln::weights {
namespace {

namespace fs = std::filesystem;
using test::expect_error;

DetectedModel cunet_model() {
    CUNetConfig c;
    c.scale = 1;
    c.program = CUNetConfig::Program::WAIFU2X;
    DetectedModel m;
    for (const GanLayer& l : cunet_layers(c)) {
        const auto shape = l.weight_shape();
        const size_t n = static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]);
        m.weights[l.key + ".weight"] = {StorageDType::F16, shape, std::vector<float>(n, 0.375f)};
        m.weights[l.key + ".bias"] = {StorageDType::F32, {l.out}, std::vector<float>(l.out, -2.5f)};
    }
    m.config = c;
    m.arch_name = "CUNet";
    m.scale = 1;
    return m;
}

fs::path temp_file(const std::string& name) {
    return fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + ".safetensors");
}

TEST(ArchMetadata, ConvertedFileLoadsAsWritten) {
    const DetectedModel m = cunet_model();
    const fs::path path = temp_file("cunet");
    write_safetensors(path, m.weights, arch_metadata(m));
    const DetectedModel back = load_model_files("safetensors", {path});
    EXPECT_EQ(back.arch_name, "CUNet");
    EXPECT_EQ(back.scale, 1);
    // Detection alone would say Real-CUGAN (its naming); the block says waifu2x.
    EXPECT_EQ(model_family(back.config), "waifu2x");
    ASSERT_EQ(back.weights.size(), m.weights.size());
    for (const auto& [k, t] : m.weights) {
        EXPECT_EQ(back.weights.at(k).shape, t.shape) << k;
        EXPECT_EQ(back.weights.at(k).data, t.data) << k;
        EXPECT_EQ(back.weights.at(k).stored_as, t.stored_as) << k;
    }
    fs::remove(path);
}

TEST(ArchMetadata, ResizedSrvggKeepsItsScaleAndActivation) {
    DetectedModel m;
    SRVGGNetCompactConfig c;
    c.num_feat = 4;
    c.num_conv = 1;
    c.upscale = 4;
    c.act = SRVGGNetCompactConfig::Act::RELU;
    for (int k = 0; k <= 2; ++k) {
        const int64_t out = k == 2 ? 48 : 4;
        const int64_t in = k == 0 ? 3 : 4;
        const std::string p = "body." + std::to_string(2 * k);
        m.weights[p + ".weight"] = {StorageDType::F32,
                                    {out, in, 3, 3},
                                    std::vector<float>(static_cast<size_t>(out * in * 9), 0.1f)};
        m.weights[p + ".bias"] = {StorageDType::F32, {out}, std::vector<float>(out, 0.0f)};
    }
    m.config = c;
    m.arch_name = "SRVGGNetCompact";
    m.scale = 2;
    m.output_resize = 0.5f;
    const fs::path path = temp_file("srvgg");
    write_safetensors(path, m.weights, arch_metadata(m));
    const DetectedModel back = load_model_files("safetensors", {path});
    EXPECT_EQ(back.scale, 2);
    EXPECT_FLOAT_EQ(back.output_resize, 0.5f);
    EXPECT_EQ(std::get<SRVGGNetCompactConfig>(back.config).act, SRVGGNetCompactConfig::Act::RELU);
    fs::remove(path);
}

// tests/data/weights/srvgg_x4_converted.safetensors is `kiln convert srvgg_x4_ncnn.param`
// (also a fuzz seed for the block): it reads back as its source.
TEST(ArchMetadata, ConvertedFixtureMatchesItsNcnnSource) {
    const DetectedModel src = load_model_files(
        "ncnn", {test::fixture("srvgg_x4_ncnn.param"), test::fixture("srvgg_x4_ncnn.bin")});
    const DetectedModel conv =
        load_model_files("safetensors", {test::fixture("srvgg_x4_converted.safetensors")});
    EXPECT_EQ(conv.arch_name, src.arch_name);
    EXPECT_EQ(conv.scale, src.scale);
    ASSERT_EQ(conv.weights.size(), src.weights.size());
    for (const auto& [k, t] : src.weights)
        EXPECT_EQ(conv.weights.at(k).data, t.data) << k;
    EXPECT_EQ(
        load_safetensors_metadata(test::fixture("srvgg_x4_converted.safetensors")).at("kiln.arch"),
        "SRVGGNetCompact");
}

TEST(ArchMetadata, DisagreeingBlockIsRefused) {
    DetectedModel m = cunet_model();
    auto meta = arch_metadata(m);
    DetectedModel other = m;
    meta["kiln.arch"] = "UpConv7";
    expect_error([&] { apply_arch_metadata(other, meta); }, core::ErrorCode::BAD_FILE,
                 {"says UpConv7", "CUNet"});
    meta = arch_metadata(m);
    meta["kiln.config"] = R"({"num_in_ch":3,"num_out_ch":3,"scale":2,"program":"waifu2x"})";
    other = m;
    expect_error([&] { apply_arch_metadata(other, meta); }, core::ErrorCode::BAD_FILE,
                 {"disagrees with the tensors"});
    meta = arch_metadata(m);
    meta["kiln.config"] = std::string(100, '[') + std::string(100, ']');
    expect_error([&] { apply_arch_metadata(other, meta); }, core::ErrorCode::BAD_FILE,
                 {"nests too deeply"});
    meta = arch_metadata(m);
    meta.erase("kiln.scale");
    expect_error([&] { apply_arch_metadata(other, meta); }, core::ErrorCode::BAD_FILE,
                 {"'kiln.scale' is missing"});
    // A file without the block is left to detection.
    other = m;
    apply_arch_metadata(other, {{"format", "pt"}});
    EXPECT_EQ(other.arch_name, "CUNet");
}

}  // namespace
}  // namespace kiln::weights
