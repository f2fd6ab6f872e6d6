#include "weights/safetensors.h"

#include "tests/weights/test_support.h"

namespace kiln::weights {
namespace {

using test::expect_error;
using test::fixture;

TEST(Safetensors, LoadsF32WithExactValues) {
    const StateDict sd = load_safetensors(fixture("srvgg_x4.safetensors"));
    test::expect_matches_fixture(sd, "srvgg_x4.safetensors");
    EXPECT_EQ(sd.at("body.0.weight").stored_as, StorageDType::F32);
    test::expect_matches_fixture(load_safetensors(fixture("rrdb_x4.safetensors")),
                                 "rrdb_x4.safetensors");
}

TEST(Safetensors, LoadsF16AndBF16) {
    const StateDict f16 = load_safetensors(fixture("srvgg_x4_f16.safetensors"));
    test::expect_matches_fixture(f16, "srvgg_x4_f16.safetensors");
    EXPECT_EQ(f16.at("body.6.bias").stored_as, StorageDType::F16);
    const StateDict bf16 = load_safetensors(fixture("srvgg_x4_bf16.safetensors"));
    test::expect_matches_fixture(bf16, "srvgg_x4_bf16.safetensors");
    EXPECT_EQ(bf16.at("body.6.bias").stored_as, StorageDType::BF16);
    EXPECT_STREQ(storage_dtype_name(StorageDType::BF16), "BF16");
}

TEST(Safetensors, HugeHeaderLengthIsRefusedBeforeAllocating) {
    expect_error([] { load_safetensors(fixture("evil_header_len.safetensors")); },
                 core::ErrorCode::BAD_FILE,
                 {"evil_header_len.safetensors", "header length 1152921504606846976", "exceeds"});
}

TEST(Safetensors, TensorClaimingMoreThanTheFileIsRefused) {
    expect_error([] { load_safetensors(fixture("evil_huge_tensor.safetensors")); },
                 core::ErrorCode::BAD_FILE, {"tensor 'w'", "outside the 16-byte data section"});
}

TEST(Safetensors, OverflowingShapeIsRefused) {
    expect_error([] { load_safetensors(fixture("evil_overflow.safetensors")); },
                 core::ErrorCode::BAD_FILE, {"tensor 'w'", "overflows"});
}

TEST(Safetensors, OffsetsDisagreeingWithShapeAreRefused) {
    expect_error([] { load_safetensors(fixture("evil_size_mismatch.safetensors")); },
                 core::ErrorCode::BAD_FILE, {"span 12 bytes", "need 16"});
}

TEST(Safetensors, OtherDtypesAreUnsupported) {
    expect_error([] { load_safetensors(fixture("unsupported_dtype.safetensors")); },
                 core::ErrorCode::UNSUPPORTED, {"tensor 'w'", "I64"});
}

TEST(Safetensors, MalformedAndTruncatedFilesAreBad) {
    expect_error([] { load_safetensors(fixture("evil_json.safetensors")); },
                 core::ErrorCode::BAD_FILE, {"evil_json.safetensors", "not valid JSON"});
    expect_error([] { load_safetensors(fixture("trunc.safetensors")); }, core::ErrorCode::BAD_FILE,
                 {"trunc.safetensors", "outside"});
    expect_error([] { load_safetensors(fixture("ncnn_garbage.bin")); }, core::ErrorCode::BAD_FILE,
                 {"too short"});
}

TEST(Safetensors, MissingFileIsNotFound) {
    expect_error([] { load_safetensors(fixture("no_such_file.safetensors")); },
                 core::ErrorCode::NOT_FOUND, {"no_such_file.safetensors"});
}

}  // namespace
}  // namespace kiln::weights
