// The embedded stores' own behaviour (the JobStore contract is job_store_contract_test.cpp):
// ids, SQLite's upgrades of older databases, the local result store.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <set>

#include "core/error.h"
#include "scheduler/ids.h"
#include "scheduler/local_result_store.h"
#include "scheduler/sqlite_job_store.h"
#include "tests/scheduler/temp_dir.h"

namespace kiln::scheduler {
namespace {

Job make_job(const std::string& session) {
    Job j;
    j.id = random_id();
    j.session_id = session;
    j.model = std::string("m");  // (assigning the literal trips GCC 12 -Wrestrict at -O3)
    j.created_at = now_ms();
    return j;
}

TEST(Ids, RandomHexAndValidation) {
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        const std::string id = random_id();
        EXPECT_TRUE(is_valid_id(id));
        EXPECT_TRUE(seen.insert(id).second);
    }
    EXPECT_FALSE(is_valid_id("../../etc/passwd"));
    EXPECT_FALSE(is_valid_id(std::string(32, 'A')));
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
    EXPECT_FALSE(constant_time_equal("abc", "abd"));
    EXPECT_FALSE(constant_time_equal("abc", "ab"));
}

TEST(SqliteJobStore, UpdatePersistsAcrossReopen) {
    test::TempDir dir;
    const std::string s = random_id();
    Job job = make_job(s);
    {
        SqliteJobStore store(dir.path() / "kiln.db");
        store.insert_job(job);
        job.status = JobStatus::SUCCEEDED;
        job.attempts = 2;
        job.error = JobError{"x", "y"};
        job.outputs = {JobOutput{0, 8, 4, "image/png", "\"e\""}};  // as older versions wrote it
        job.task = TaskKind::GENERATE;
        ASSERT_TRUE(store.update_job(job));
    }
    SqliteJobStore store(dir.path() / "kiln.db");
    const auto read = store.find_job(s, job.id);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->status, JobStatus::SUCCEEDED);
    EXPECT_EQ(read->attempts, 2);
    ASSERT_TRUE(read->error);
    EXPECT_EQ(read->error->code, "x");
    ASSERT_EQ(read->outputs.size(), 1u);
    EXPECT_EQ(read->outputs[0].width, 8);
    EXPECT_EQ(read->outputs[0].digest, "e");   // the quotes belong to the HTTP header
    EXPECT_EQ(read->task, TaskKind::UPSCALE);  // the task is written once, at insert
    Job next = make_job(s);
    store.insert_job(next);
    EXPECT_GT(next.seq, job.seq);
    EXPECT_GT(next.update_seq, read->update_seq);
}

// A database from before jobs stored their task: the column is added, and each old job's
// task is read off its params (a generate job's hold the seed it used).
TEST(SqliteJobStore, JobsWithoutATaskColumnGetOne) {
    test::TempDir dir;
    const std::string s = random_id();
    Job generate = make_job(s);
    generate.task = TaskKind::GENERATE;
    generate.params_json = R"({"seed":7,"steps":2})";
    Job upscale = make_job(s);
    upscale.params_json = R"({"tile":64})";
    {
        SqliteJobStore store(dir.path() / "kiln.db");
        store.insert_job(generate);
        store.insert_job(upscale);
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path() / "kiln.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE jobs DROP COLUMN task", nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);

    SqliteJobStore store(dir.path() / "kiln.db");
    EXPECT_EQ(store.find_job(s, generate.id)->task, TaskKind::GENERATE);
    EXPECT_EQ(store.find_job(s, upscale.id)->task, TaskKind::UPSCALE);
    Job fresh = make_job(s);
    fresh.task = TaskKind::GENERATE;
    store.insert_job(fresh);
    EXPECT_EQ(store.find_job(s, fresh.id)->task, TaskKind::GENERATE);
}

TEST(LocalResultStore, AtomicWritesScopedBySession) {
    test::TempDir dir;
    LocalResultStore store(dir.path());
    const std::string s = random_id(), j = random_id();
    store.put(s, j, "output-0.png", {1, 2, 3});
    EXPECT_EQ(*store.get(s, j, "output-0.png"), (std::vector<uint8_t>{1, 2, 3}));
    EXPECT_FALSE(store.get(random_id(), j, "output-0.png"));
    for (const auto& entry : std::filesystem::directory_iterator(dir.path() / s / j))
        EXPECT_EQ(entry.path().filename(), "output-0.png");  // no temporary left behind
    EXPECT_THROW(store.put("../x", j, "a", {}), core::Error);
    EXPECT_THROW(store.get(s, "..", "a"), core::Error);
    store.remove_job(s, j);
    EXPECT_FALSE(store.get(s, j, "output-0.png"));
}

}  // namespace
}  // namespace kiln::scheduler
