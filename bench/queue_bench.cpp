// What the shared state costs a job: the queue's push + pop + ack and the store's insert +
// two updates (running, succeeded) + find, in memory (FairQueue, SQLite in a temp folder)
// and in Redis (RedisJobQueue, RedisJobStore), one job per iteration, one client thread.
//
//   redis-server --port 6390 --save '' --appendonly no &
//   KILN_BENCH_REDIS=redis://127.0.0.1:6390 build/bench/kiln_queue_bench
//
// The Redis rows are skipped without KILN_BENCH_REDIS. Every run uses a fresh key prefix.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "scheduler/fair_queue.h"
#include "scheduler/ids.h"
#include "scheduler/redis/redis_job_queue.h"
#include "scheduler/redis/redis_job_store.h"
#include "scheduler/sqlite_job_store.h"

namespace kiln::scheduler {
namespace {

const char* redis_url() {
    return std::getenv("KILN_BENCH_REDIS");
}

std::string fresh_prefix() {
    return "kiln-bench-" + random_id();
}

// Three sessions in turn, so the round robin has work to do.
void queue_round_trip(benchmark::State& state, JobQueue& queue) {
    const std::string sessions[3] = {random_id(), random_id(), random_id()};
    int64_t n = 0;
    for (auto _ : state) {
        const std::string job = random_id();
        queue.push(sessions[n++ % 3], job, Priority::NORMAL);
        const auto popped = queue.pop();
        if (!popped) {
            state.SkipWithError("the queue lost a job");
            return;
        }
        queue.ack(*popped);
    }
    state.SetItemsProcessed(state.iterations());
}

void store_round_trip(benchmark::State& state, JobStore& store) {
    const std::string session = random_id();
    for (auto _ : state) {
        Job job;
        job.id = random_id();
        job.session_id = session;
        job.model = std::string("realcugan-up2x-conservative");
        job.created_at = now_ms();
        store.insert_job(job);
        job.status = JobStatus::RUNNING;
        job.started_at = now_ms();
        job.attempts = 1;
        store.update_job(job);
        job.status = JobStatus::SUCCEEDED;
        job.finished_at = now_ms();
        job.outputs = {JobOutput{0, 128, 128, "image/png", "00112233445566778899aabbccddeeff"}};
        store.update_job(job);
        benchmark::DoNotOptimize(store.find_job(session, job.id));
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_FairQueue(benchmark::State& state) {
    FairQueue queue;
    queue_round_trip(state, queue);
}
BENCHMARK(BM_FairQueue);

void BM_RedisQueue(benchmark::State& state) {
    if (!redis_url()) {
        state.SkipWithError("set KILN_BENCH_REDIS=redis://HOST:PORT");
        return;
    }
    RedisJobQueue queue(parse_redis_url(redis_url()), fresh_prefix(), "bench-node");
    queue_round_trip(state, queue);
}
BENCHMARK(BM_RedisQueue)->UseRealTime();

void BM_SqliteStore(benchmark::State& state) {
    std::string dir = (std::filesystem::temp_directory_path() / "kiln-bench-XXXXXX").string();
    if (!mkdtemp(dir.data())) {
        state.SkipWithError("mkdtemp failed");
        return;
    }
    {
        SqliteJobStore store(std::filesystem::path(dir) / "kiln.db");
        store_round_trip(state, store);
    }
    std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SqliteStore)->UseRealTime();

void BM_RedisStore(benchmark::State& state) {
    if (!redis_url()) {
        state.SkipWithError("set KILN_BENCH_REDIS=redis://HOST:PORT");
        return;
    }
    RedisJobStore store(parse_redis_url(redis_url()), fresh_prefix());
    store_round_trip(state, store);
}
BENCHMARK(BM_RedisStore)->UseRealTime();

}  // namespace
}  // namespace kiln::scheduler

BENCHMARK_MAIN();
