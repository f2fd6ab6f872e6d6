#include "weights/ncnn.h"

#include "tests/weights/test_support.h"

namespace kiln::weights {
namespace {

using test::expect_error;
using test::fixture;

NcnnGraph load_fixture(const std::string& stem) {
    return load_ncnn(fixture(stem + ".param"), fixture(stem + ".bin"));
}

TEST(Ncnn, ParsesLayersBlobsAndParams) {
    const NcnnGraph g = load_fixture("srvgg_x4_ncnn");
    // Input, Split, 4 conv + 3 PReLU, PixelShuffle, Interp, BinaryOp.
    ASSERT_EQ(g.layers.size(), 12u);
    const NcnnLayer& conv = g.layers[2];
    EXPECT_EQ(conv.type, "Convolution");
    EXPECT_EQ(conv.name, "conv_0");
    EXPECT_EQ(conv.param_int(0, 0), 4);
    EXPECT_EQ(conv.param_int(6, 0), 108);
    EXPECT_EQ(conv.param_int(11, 7), 7);  // absent: fallback
    EXPECT_EQ(conv.weights.at("weight").shape, (std::vector<int64_t>{4, 3, 3, 3}));
    EXPECT_EQ(conv.weights.at("weight").stored_as, StorageDType::F16);
    EXPECT_EQ(conv.weights.at("bias").stored_as, StorageDType::F32);
    EXPECT_EQ(g.layers[3].type, "PReLU");
    EXPECT_EQ(g.layers[3].weights.at("slope").shape, (std::vector<int64_t>{4}));
    const NcnnLayer& interp = g.layers[10];
    EXPECT_EQ(interp.type, "Interp");
    EXPECT_TRUE(interp.params.at(1).is_float);
    EXPECT_FLOAT_EQ(interp.param_float(1, 0), 4.0f);
    EXPECT_EQ(interp.inputs, (std::vector<std::string>{"data_splitncnn_1"}));
}

TEST(Ncnn, ParsesArrayParams) {
    const NcnnGraph g = parse_ncnn_param(
        "7767517\n2 2\nInput in 0 1 data\nEltwise e 1 1 data out 0=1 "
        "-23301=2,2.000000e-01,1.000000e+00 "
        "-23310=3,1,2,3\n",
        "inline");
    const NcnnLayer& e = g.layers[1];
    EXPECT_EQ(e.param_array(1), (std::vector<float>{0.2f, 1.0f}));
    EXPECT_TRUE(e.params.at(1).is_float);
    EXPECT_EQ(e.param_array(10), (std::vector<float>{1, 2, 3}));
    EXPECT_FALSE(e.params.at(10).is_float);
    EXPECT_TRUE(e.param_array(5).empty());
}

TEST(Ncnn, ShortBinSaysExpectedAndPresent) {
    expect_error([] { load_fixture("ncnn_short"); }, core::ErrorCode::BAD_FILE,
                 {"ncnn_short.bin", "too short for the .param", "needs", "only", "present"});
}

TEST(Ncnn, TrailingBytesAreRefused) {
    expect_error([] { load_fixture("ncnn_trailing"); }, core::ErrorCode::BAD_FILE,
                 {"4 bytes left after the last layer"});
}

TEST(Ncnn, Int8WeightsAreUnsupported) {
    expect_error([] { load_fixture("ncnn_int8"); }, core::ErrorCode::UNSUPPORTED,
                 {"conv_0", "int8"});
}

TEST(Ncnn, GarbageParamIsBad) {
    expect_error([] { load_fixture("ncnn_garbage"); }, core::ErrorCode::BAD_FILE,
                 {"ncnn_garbage.param", "line 4", "'abc'"});
    expect_error([] { parse_ncnn_param("hello\n", "x.param"); }, core::ErrorCode::BAD_FILE,
                 {"x.param", "magic"});
    expect_error([] { parse_ncnn_param("7767517\n2 2\nInput in 0 1 a\n", "x.param"); },
                 core::ErrorCode::BAD_FILE, {"ends after 1 of 2 layers"});
    expect_error([] { parse_ncnn_param("7767517\n1 1\nReLU r 1 1 nowhere out\n", "x.param"); },
                 core::ErrorCode::BAD_FILE, {"reads blob 'nowhere' before it is produced"});
    expect_error([] { parse_ncnn_param("7767517\n1 1\nInput in 0 1 a -23301=3,1.0\n", "x.param"); },
                 core::ErrorCode::BAD_FILE, {"declares 3 values but holds 1"});
}

TEST(Ncnn, UnknownLayerTypeIsUnsupported) {
    expect_error([] { load_fixture("ncnn_unknown_layer"); }, core::ErrorCode::UNSUPPORTED,
                 {"'MysteryOp'"});
}

}  // namespace
}  // namespace kiln::weights
