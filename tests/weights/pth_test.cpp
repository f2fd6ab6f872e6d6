#include "weights/pth.h"

#include "tests/weights/test_support.h"

namespace kiln::weights {
namespace {

using test::expect_error;
using test::fixture;

TEST(Pth, LoadsZipStateDict) {
    const StateDict sd = load_pth(fixture("rrdb_x4_basicsr.pth"));
    test::expect_matches_fixture(sd, "rrdb_x4_basicsr.pth");
    test::expect_matches_fixture(load_pth(fixture("srvgg_x4.pth")), "srvgg_x4.pth");
}

TEST(Pth, PrefersParamsEmaOverParams) {
    test::expect_matches_fixture(load_pth(fixture("rrdb_x2_basicsr_ema.pth")),
                                 "rrdb_x2_basicsr_ema.pth");
    test::expect_matches_fixture(load_pth(fixture("srvgg_x2_params.pth")), "srvgg_x2_params.pth");
}

TEST(Pth, LoadsOriginalEsrganNaming) {
    test::expect_matches_fixture(load_pth(fixture("rrdb_x4_esrgan.pth")), "rrdb_x4_esrgan.pth");
}

TEST(Pth, LoadsLegacyFormat) {
    test::expect_matches_fixture(load_pth(fixture("rrdb_x4_esrgan_legacy.pth")),
                                 "rrdb_x4_esrgan_legacy.pth");
    test::expect_matches_fixture(load_pth(fixture("srvgg_x2_legacy.pth")), "srvgg_x2_legacy.pth");
}

TEST(Pth, LoadsHalfAndDeflate) {
    const StateDict half = load_pth(fixture("srvgg_x4_f16.pth"));
    test::expect_matches_fixture(half, "srvgg_x4_f16.pth");
    EXPECT_EQ(half.at("body.0.weight").stored_as, StorageDType::F16);
    test::expect_matches_fixture(load_pth(fixture("srvgg_x4_deflate.pth")), "srvgg_x4_deflate.pth");
}

TEST(Pth, StorageOffsetsAndSharedStorage) {
    test::expect_matches_fixture(load_pth(fixture("views.pth")), "views.pth");
}

TEST(Pth, NonContiguousAndNonFloatAreUnsupported) {
    expect_error([] { load_pth(fixture("noncontiguous.pth")); }, core::ErrorCode::UNSUPPORTED,
                 {"'t'", "not contiguous"});
    expect_error([] { load_pth(fixture("int64_tensor.pth")); }, core::ErrorCode::UNSUPPORTED,
                 {"'n'", "LongStorage"});
}

TEST(Pth, RefusesCodeExecutionGlobals) {
    expect_error([] { load_pth(fixture("evil_system.pth")); }, core::ErrorCode::BAD_FILE,
                 {"evil_system.pth", "refused global 'posix.system'"});
    expect_error([] { load_pth(fixture("evil_eval.pth")); }, core::ErrorCode::BAD_FILE,
                 {"refused global 'builtins.eval'"});
    expect_error([] { load_pth(fixture("evil_builtin.pth")); }, core::ErrorCode::BAD_FILE,
                 {"refused global '__builtin__.getattr'"});
}

TEST(Pth, RefusesUnknownOpcodesAndBrokenPickles) {
    expect_error([] { load_pth(fixture("evil_opcode.pth")); }, core::ErrorCode::BAD_FILE,
                 {"unsupported opcode 0x69"});
    expect_error([] { load_pth(fixture("evil_memo.pth")); }, core::ErrorCode::BAD_FILE,
                 {"memo key 7 missing"});
}

TEST(Pth, TruncatedAndCorruptArchives) {
    expect_error([] { load_pth(fixture("trunc.pth")); }, core::ErrorCode::BAD_FILE,
                 {"trunc.pth", "end-of-central-directory"});
    expect_error([] { load_pth(fixture("bad_central_dir.pth")); }, core::ErrorCode::BAD_FILE,
                 {"bad_central_dir.pth", "bad central directory entry"});
    expect_error([] { load_pth(fixture("storage_too_short.pth")); }, core::ErrorCode::BAD_FILE,
                 {"data/0", "holds 8 bytes, storage needs 432"});
    expect_error([] { load_pth(fixture("trunc_legacy.pth")); }, core::ErrorCode::BAD_FILE,
                 {"trunc_legacy.pth", "truncated"});
    expect_error([] { load_pth(fixture("srvgg_x4.safetensors")); }, core::ErrorCode::BAD_FILE,
                 {"not a PyTorch file"});
}

}  // namespace
}  // namespace kiln::weights
