// The job scheduler: admission, the fair queue, worker slots (one execution context each),
// cancellation, progress and restart recovery. HTTP threads call submit/get/cancel...; only
// worker threads run models. Every call is thread-safe; submit, retry and remove block on
// the job store (a committed write), none waits for a job to run.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "image/image.h"
#include "scheduler/job.h"
#include "scheduler/job_queue.h"
#include "scheduler/job_store.h"
#include "scheduler/model_cache.h"
#include "scheduler/result_store.h"
#include "scheduler/scheduler_error.h"
#include "scheduler/scheduler_stats.h"
#include "scheduler/task.h"
#include "weights/registry.h"

namespace kiln::scheduler {

struct SchedulerOptions {
    int workers = 1;
    int threads_per_worker = 0;  // 0: hardware threads / workers (at least 1)
    size_t max_queued = 1000;    // queued jobs, all sessions
    size_t max_queued_per_session = 100;
    // Bytes a session's files (inputs, outputs, thumbnails) may take before its new jobs are
    // refused (507 session_storage_full); 0: no limit. Deleting jobs frees them.
    uint64_t max_stored_bytes_per_session = uint64_t{2} << 30;
    size_t memory_budget = size_t{2} << 30;      // peak bytes one job's plan may hold
    size_t model_cache_bytes = size_t{4} << 30;  // loaded weights kept for reuse
    int max_attempts = 3;                        // runs interrupted by a stop, then failed
    image::DecodeLimits decode_limits;
    bool start_paused = false;                 // workers take no job until resume_workers()
    std::chrono::milliseconds job_timeout{0};  // running longer fails with "timeout"; 0: none
    // Keep each worker's compiled plans per model between jobs (ModelCache::plans); off,
    // every job compiles its plans afresh (the behaviour before plan reuse; for comparisons).
    bool reuse_plans = true;
    // The queue and the store are shared with other nodes (Redis): start() leaves recovery to
    // the queue's claims, idle workers poll the queue every queue_poll (other nodes push), and
    // running jobs' claims are renewed every claim_renew (under the queue's claim timeout).
    bool shared_queue = false;
    std::chrono::milliseconds queue_poll{200};
    std::chrono::milliseconds claim_renew{20000};
};

enum class SchedulerEventKind { QUEUED, STARTED, PROGRESS, FINISHED, REMOVED };

struct SchedulerEvent {
    SchedulerEventKind kind;
    std::string session_id;
    std::string job_id;
    // QUEUED: the fair queue's operation number of the push; STARTED: of the pop. Orders
    // queueing against starts exactly (notifications from different threads may interleave).
    uint64_t queue_op = 0;
};

struct SubmitRequest {
    std::string session_id;
    std::string model;
    std::optional<TaskKind> task;    // when the client named one: must be the model's
    std::string params_json = "{}";  // a JSON object; the model's task validates it
    Priority priority = Priority::NORMAL;
    std::string idempotency_key;
    std::string request_hash;
    TaskInput input;
};

// A job's stored input and its media type.
struct StoredInput {
    std::vector<uint8_t> bytes;
    std::string content_type;
};

struct SubmitResult {
    Job job;                // with its live position
    bool existing = false;  // an Idempotency-Key matched an earlier job
};

enum class CancelOutcome { CANCELLED, STOPPING };  // queued: at once; running: on its way

struct QueueInfo {
    bool paused = false;
    size_t queued = 0;
    size_t running = 0;
};

class Scheduler {
  public:
    using Observer = std::function<void(const SchedulerEvent&)>;

    Scheduler(JobStore& jobs,
              ResultStore& results,
              weights::ModelRegistry& registry,
              engine::Backend& backend,
              SchedulerOptions options,
              Observer observer = {},
              std::unique_ptr<JobQueue> queue = nullptr);  // null: an in-memory FairQueue
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Re-queues what the store holds unfinished (not with a shared queue: it keeps its queued
    // jobs, and its claims bring back those of a node that died), then starts the workers.
    void start();
    // Stops the workers; running jobs are interrupted and stay `running` in the store, so
    // the next start re-runs them (attempts + 1). Queued jobs stay queued.
    void stop();
    // Refuses new jobs, lets running ones finish for up to `grace`, then stop().
    void drain(std::chrono::milliseconds grace);
    bool accepting() const;

    // Throws SchedulerError or kiln::core::Error; the job is committed when this returns.
    SubmitResult submit(SubmitRequest request);
    // A job with its live progress and queue position.
    std::optional<Job> get(const std::string& session_id, const std::string& id);
    std::vector<Job> list(const std::string& session_id, const JobQuery& query);
    // Throws SchedulerError NOT_FOUND or CONFLICT (already final).
    CancelOutcome cancel(const std::string& session_id, const std::string& id);
    // Queues a failed or cancelled job again as a new job; CONFLICT otherwise.
    SubmitResult retry(const std::string& session_id, const std::string& id);
    // Cancels when needed and deletes the job and its files; NOT_FOUND when absent.
    void remove(const std::string& session_id, const std::string& id);
    void remove_session(const std::string& session_id);
    // The job's submitted input while it is kept; SchedulerError NOT_FOUND when the job is
    // not this session's, nullopt when its input is gone.
    std::optional<StoredInput> input(const std::string& session_id, const std::string& id);

    // Pushes the jobs the store holds as queued, created at least min_age ago, that the queue
    // neither holds nor has handed out: left so by a request that failed between the store
    // and the queue (a shared store out of reach). Returns how many; the service's sweep
    // calls it.
    size_t repair_queue(std::chrono::milliseconds min_age);

    QueueInfo queue_info(const std::string& session_id);
    void set_session_paused(const std::string& session_id, bool paused);
    // Cancels the session's queued jobs; returns how many.
    size_t clear_session_queue(const std::string& session_id);

    // Holds every worker before its next job (tests, maintenance).
    void pause_workers();
    void resume_workers();

    ModelCache& models() { return models_; }
    // Every readable model of the registry, described by its task (loading through the model
    // cache what only the loaded model knows, e.g. a generation model's prompts); a model that
    // fails to load is left out and logged.
    std::vector<ModelDescription> describe_models();
    SchedulerStats stats() const;
    int workers() const { return options_.workers; }
    int threads_per_worker() const { return threads_per_worker_; }
    // Seconds a refused client should wait, from observed run times and the queue length.
    int retry_after_seconds() const;

  private:
    struct Running {
        std::string session_id;
        std::shared_ptr<std::atomic<bool>> cancel;
        bool user_cancelled = false;  // as opposed to interrupted by stop()
        bool timed_out = false;
        // Its claim went to another node (shared queue): this node records nothing more.
        bool lost = false;
        QueuedJob queued;  // what the claim renewals name
        std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
        int done = 0, total = 0;
        // A client's cancel (of this node or another): the run stops at its next check.
        void cancel_for_client() {
            user_cancelled = true;
            cancel->store(true);
        }
    };

    void worker_loop(engine::ExecutionContext& context);
    // Cancels jobs running past options_.job_timeout and renews a shared queue's claims.
    void watchdog_loop();
    void renew_claims();  // under mutex_
    // True when this node is done with the job (ack it); false when it stays as stored for
    // another run (stopping, or a store failure), which a shared queue's claim expiry gives.
    bool run_job(const QueuedJob& queued,
                 engine::ExecutionContext& context,
                 std::atomic<bool>& cancel);
    // How a write of a job's state meets a failing store (a full disk, an I/O error).
    enum class OnStoreError {
        THROW,  // a client's request: it gets the error, and the caller undoes what it did
        WAIT,   // a worker: retry until written (or stopping), so no job stays "running"
    };
    enum class Recorded { YES, DELETED, STOPPING, LOST };
    Recorded record(Job& job, OnStoreError on_error);
    // False when stop() interrupted a write the store refused: the job stays as stored.
    bool finish(Job& job, OnStoreError on_error);
    // How a run whose cancel flag was set ends: failed with "timeout" (the watchdog) or
    // cancelled (the client); false when stop() set it, and the job stays as stored.
    bool end_interrupted(Job& job);
    // Puts jobs a client request took off the queue back on it (their cancel failed).
    void requeue(const std::string& session_id, const std::vector<std::string>& ids);
    // Writes output `index` and its thumbnail (result_names.h) and describes it with the
    // digest of its bytes.
    JobOutput store_output(const Job& job, int index, const RunOutput& out);
    SubmitResult enqueue_new(Job job, const std::vector<uint8_t>& input);
    SubmitResult admit(SubmitRequest& request);
    // The model `name` from the cache; SchedulerError MODEL_NOT_FOUND when there is none.
    std::shared_ptr<const TaskModel> task_model(const std::string& name);
    // Throws SchedulerError QUEUE_FULL / SESSION_QUEUE_FULL with a Retry-After.
    void check_queue_limits(const std::string& session_id) const;
    SchedulerError queue_full_error(bool whole_queue) const;  // under mutex_
    // An earlier job answering an Idempotency-Key: IDEMPOTENCY_REUSED when it was submitted
    // with another request.
    SubmitResult existing_job(Job job, const std::string& request_hash);
    void check_storage_limit(const std::string& session_id, size_t input_bytes);
    void notify(SchedulerEventKind kind,
                const std::string& session_id,
                const std::string& id,
                uint64_t queue_op = 0);
    void apply_live_state(Job& job);  // under mutex_
    bool lost(const std::string& id) const;
    // Sets the running job's cancel flag when a cancel was asked on another node (a shared
    // queue's cancel request).
    void take_remote_cancel(const QueuedJob& queued);
    // False when another node took the running job over (on a shared queue the claim is
    // renewed to find out): this node then records nothing of it.
    bool holds_claim(const QueuedJob& queued);
    int retry_after_locked() const;

    JobStore& jobs_;
    ResultStore& results_;
    weights::ModelRegistry& registry_;
    engine::Backend& backend_;
    SchedulerOptions options_;
    Observer observer_;
    ModelCache models_;
    int threads_per_worker_ = 1;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable idle_;
    std::condition_variable watchdog_wake_;
    std::condition_variable store_retry_wake_;  // a worker waiting out a failing store
    std::unique_ptr<JobQueue> queue_;
    std::map<std::string, Running> running_;  // by job id
    bool stopping_ = false;
    bool workers_paused_ = false;
    std::atomic<bool> draining_{false};
    double mean_run_seconds_ = 0;
    SchedulerStats stats_;     // histograms and counters; queue/pool figures filled on read
    std::mutex submit_mutex_;  // admission check + insert + push happen as one
    std::vector<std::unique_ptr<engine::ExecutionContext>> contexts_;
    std::vector<std::thread> threads_;
};

}  // namespace kiln::scheduler
