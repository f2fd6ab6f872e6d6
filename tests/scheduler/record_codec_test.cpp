// The Redis store's record encoding: every stored field survives a round trip, older records
// (fields missing) decode with defaults, and a corrupt record is a clear BAD_FILE error.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "scheduler/redis/record_codec.h"

namespace kiln::scheduler {
namespace {

Job full_job() {
    Job j;
    j.id = "0123456789abcdef0123456789abcdef";
    j.session_id = "fedcba9876543210fedcba9876543210";
    j.seq = 41;
    j.model = "realcugan-up2x-conservative";
    j.task = TaskKind::GENERATE;
    j.params_json = R"({"prompt":"a \"quoted\" bag\n","steps":20})";
    j.tile = 256;
    j.priority = Priority::LOW;
    j.status = JobStatus::FAILED;
    j.created_at = 1764720000123;
    j.started_at = 1764720001000;
    j.finished_at = 1764720002500;
    j.attempts = 2;
    j.progress_done = 3;
    j.progress_total = 9;
    j.error = JobError{"out_of_memory", "tile 512 needs 3 GiB (\"quoted\")"};
    j.retry_of = "aaaabbbbccccddddaaaabbbbccccdddd";
    static constexpr char key[] = "key\x01 \xc3\xbc \xff\xfe\0 raw";  // any bytes a header has
    j.idempotency_key = std::string(key, sizeof key - 1);
    j.request_hash = std::string(64, 'e');
    j.input_width = 451;
    j.input_height = 300;
    j.update_seq = 9007199254740993;  // above 2^53: must not pass through a double
    j.outputs = {{0, 902, 600, "image/png", "0011"}, {1, 64, 64, "image/png", "2233"}};
    j.position = 5;
    return j;
}

void expect_same(const Job& a, const Job& b) {
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.session_id, b.session_id);
    EXPECT_EQ(a.seq, b.seq);
    EXPECT_EQ(a.model, b.model);
    EXPECT_EQ(a.task, b.task);
    EXPECT_EQ(a.params_json, b.params_json);
    EXPECT_EQ(a.tile, b.tile);
    EXPECT_EQ(a.priority, b.priority);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.created_at, b.created_at);
    EXPECT_EQ(a.started_at, b.started_at);
    EXPECT_EQ(a.finished_at, b.finished_at);
    EXPECT_EQ(a.attempts, b.attempts);
    EXPECT_EQ(a.progress_done, b.progress_done);
    EXPECT_EQ(a.progress_total, b.progress_total);
    ASSERT_EQ(a.error.has_value(), b.error.has_value());
    if (a.error) {
        EXPECT_EQ(a.error->code, b.error->code);
        EXPECT_EQ(a.error->message, b.error->message);
    }
    EXPECT_EQ(a.retry_of, b.retry_of);
    EXPECT_EQ(a.idempotency_key, b.idempotency_key);
    EXPECT_EQ(a.request_hash, b.request_hash);
    EXPECT_EQ(a.input_width, b.input_width);
    EXPECT_EQ(a.input_height, b.input_height);
    EXPECT_EQ(a.update_seq, b.update_seq);
    ASSERT_EQ(a.outputs.size(), b.outputs.size());
    for (size_t i = 0; i < a.outputs.size(); ++i) {
        EXPECT_EQ(a.outputs[i].index, b.outputs[i].index);
        EXPECT_EQ(a.outputs[i].width, b.outputs[i].width);
        EXPECT_EQ(a.outputs[i].height, b.outputs[i].height);
        EXPECT_EQ(a.outputs[i].content_type, b.outputs[i].content_type);
        EXPECT_EQ(a.outputs[i].digest, b.outputs[i].digest);
    }
}

TEST(RecordCodec, JobRoundTrip) {
    const Job job = full_job();
    const Job back = decode_job(encode_job(job));
    expect_same(back, job);
    EXPECT_EQ(back.position, -1);  // live, never stored

    Job plain;  // (ids assigned from literals trip GCC 12's -Wrestrict here)
    plain.id = std::string(32, 'a');
    plain.session_id = std::string(32, 'b');
    expect_same(decode_job(encode_job(plain)), plain);

    // A message with bytes that are not UTF-8 is stored with U+FFFD in their place.
    plain.error = JobError{"internal", "file \xff.png"};
    EXPECT_EQ(decode_job(encode_job(plain)).error->message, "file \xef\xbf\xbd.png");
}

TEST(RecordCodec, MissingFieldsTakeDefaults) {
    const Job j = decode_job(R"({"id":"a","session_id":"s","status":"running"})");
    EXPECT_EQ(j.status, JobStatus::RUNNING);
    EXPECT_EQ(j.task, TaskKind::UPSCALE);
    EXPECT_EQ(j.priority, Priority::NORMAL);
    EXPECT_EQ(j.params_json, "{}");
    EXPECT_EQ(j.tile, -1);
    EXPECT_FALSE(j.error.has_value());
    EXPECT_TRUE(j.outputs.empty());
}

TEST(RecordCodec, CorruptRecordsAreBadFile) {
    for (const char* bad : {"", "not json", "[1,2]", R"({"session_id":"s"})",
                            R"({"id":"a","session_id":"s","status":"exploded"})",
                            R"({"id":"a","session_id":"s","seq":"forty"})",
                            R"({"id":"a","session_id":"s","outputs":{"0":1}})",
                            R"({"id":"a","session_id":"s","outputs":[7]})",
                            R"({"id":"a","session_id":"s","error":"oops"})",
                            R"({"id":"a","session_id":"s","idempotency_key_hex":"0g"})",
                            R"({"id":"a","session_id":"s","idempotency_key_hex":"abc"})"}) {
        try {
            decode_job(bad);
            ADD_FAILURE() << "decoded: " << bad;
        } catch (const core::Error& e) {
            EXPECT_EQ(e.code(), core::ErrorCode::BAD_FILE) << bad;
            EXPECT_NE(std::string(e.what()).find("job record"), std::string::npos) << e.what();
        }
    }
}

// Records and the Redis store's key names hold the key as two lowercase hex digits a byte.
TEST(RecordCodec, IdempotencyKeyHex) {
    EXPECT_EQ(idempotency_key_hex(std::string("k\0\xff", 3)), "6b00ff");
    EXPECT_EQ(idempotency_key_hex(""), "");
}

}  // namespace
}  // namespace kiln::scheduler
