#include "scheduler/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "engine/trace.h"
#include "scheduler/fair_queue.h"
#include "scheduler/ids.h"
#include "scheduler/result_names.h"
#include "scheduler/scheduler_error.h"

namespace kiln::scheduler {

Scheduler::Scheduler(JobStore& jobs,
                     ResultStore& results,
                     weights::ModelRegistry& registry,
                     engine::Backend& backend,
                     SchedulerOptions options,
                     Observer observer,
                     std::unique_ptr<JobQueue> queue)
    : jobs_(jobs),
      results_(results),
      registry_(registry),
      backend_(backend),
      options_(std::move(options)),
      observer_(std::move(observer)),
      models_(registry, options_.model_cache_bytes),
      queue_(queue ? std::move(queue) : std::make_unique<FairQueue>()) {
    options_.workers = std::max(1, options_.workers);
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads_per_worker_ = options_.threads_per_worker > 0 ? options_.threads_per_worker
                                                          : std::max(1, cores / options_.workers);
    workers_paused_ = options_.start_paused;
}

Scheduler::~Scheduler() {
    stop();
}

void Scheduler::start() {
    std::map<std::string, bool> paused;
    // A shared queue keeps its queued jobs, and a job another node runs is stored as running
    // too: pushing it again would run it twice. Claims bring back a dead node's jobs.
    std::vector<Job> unfinished;
    if (!options_.shared_queue)
        unfinished = jobs_.unfinished_jobs();
    for (Job& job : unfinished) {
        if (job.status == JobStatus::RUNNING) {
            if (job.attempts >= options_.max_attempts) {
                job.status = JobStatus::FAILED;
                job.finished_at = now_ms();
                job.error =
                    JobError{"interrupted", "the server stopped while this job ran, " +
                                                std::to_string(job.attempts) + " times; retry it"};
                record(job, OnStoreError::WAIT);
                continue;
            }
            job.status = JobStatus::QUEUED;
            // A full disk at start-up is waited out: run_job takes only jobs stored as queued.
            if (record(job, OnStoreError::WAIT) != Recorded::YES)
                continue;
        }
        auto [it, inserted] = paused.try_emplace(job.session_id, false);
        if (inserted) {
            const auto session = jobs_.find_session(job.session_id);
            it->second = session && session->paused;
        }
        std::lock_guard lock(mutex_);
        queue_->set_paused(job.session_id, it->second);
        queue_->push(job.session_id, job.id, job.priority);
    }
    // Evicted plans are destroyed by their own worker: wake the workers to release them.
    // The scheduler's lock orders the wake after a waiting worker's has_retired() check.
    models_.set_retired_listener([this] {
        { std::lock_guard lock(mutex_); }
        wake_.notify_all();
    });
    std::lock_guard lock(mutex_);
    for (int i = 0; i < options_.workers; ++i) {
        contexts_.push_back(backend_.create_context(engine::ContextOptions{threads_per_worker_}));
        threads_.emplace_back([this, context = contexts_.back().get()] { worker_loop(*context); });
    }
    if (options_.job_timeout.count() > 0 || options_.shared_queue)
        threads_.emplace_back([this] { watchdog_loop(); });
}

void Scheduler::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        for (auto& [id, running] : running_)
            running.cancel->store(true);
    }
    wake_.notify_all();
    watchdog_wake_.notify_all();
    store_retry_wake_.notify_all();
    for (std::thread& t : threads_)
        t.join();
    threads_.clear();
    // Each worker dropped its own plans as it stopped; this finds any left (none, unless a
    // worker never ran) now that no thread uses the contexts.
    for (const auto& context : contexts_)
        models_.drop_plans(*context);  // plans hold the context's pool memory
    contexts_.clear();
}

void Scheduler::drain(std::chrono::milliseconds grace) {
    draining_ = true;
    {
        std::unique_lock lock(mutex_);
        workers_paused_ = true;
        idle_.wait_for(lock, grace, [&] { return running_.empty(); });
    }
    stop();
}

bool Scheduler::accepting() const {
    return !draining_;
}

void Scheduler::notify(SchedulerEventKind kind,
                       const std::string& session_id,
                       const std::string& id,
                       uint64_t queue_op) {
    if (observer_)
        observer_(SchedulerEvent{kind, session_id, id, queue_op});
}

int Scheduler::retry_after_locked() const {
    const double mean = mean_run_seconds_ > 0 ? mean_run_seconds_ : 5.0;
    const double seconds = mean * static_cast<double>(queue_->size() + 1) / options_.workers;
    return static_cast<int>(std::clamp(std::ceil(seconds), 1.0, 3600.0));
}

int Scheduler::retry_after_seconds() const {
    std::lock_guard lock(mutex_);
    return retry_after_locked();
}

SubmitResult Scheduler::submit(SubmitRequest request) {
    try {
        return admit(request);
    } catch (const SchedulerError& e) {
        std::lock_guard lock(mutex_);
        ++stats_.refused_by_reason[e.code()];
        throw;
    }
}

SubmitResult Scheduler::admit(SubmitRequest& request) {
    if (!accepting())
        throw SchedulerError(SchedulerCode::DRAINING, "the server is shutting down; retry later",
                             5);
    auto replay = [&]() -> std::optional<SubmitResult> {
        if (request.idempotency_key.empty())
            return std::nullopt;
        auto existing =
            jobs_.find_job_by_idempotency_key(request.session_id, request.idempotency_key);
        if (!existing)
            return std::nullopt;
        return existing_job(std::move(*existing), request.request_hash);
    };
    if (auto earlier = replay())
        return *earlier;

    check_queue_limits(request.session_id);  // cheap refusal before decoding anything
    const std::shared_ptr<const TaskModel> model = task_model(request.model);
    if (request.task && *request.task != model->kind()) {
        throw SchedulerError(SchedulerCode::INVALID_PARAMS,
                             "'" + request.model + "' runs " +
                                 std::string(task_kind_name(model->kind())) + " jobs, not " +
                                 std::string(task_kind_name(*request.task)));
    }
    // Admission decodes an image fully (a corrupt file is refused now, not after its wait in
    // the queue), and the worker decodes it again from the stored bytes. Carrying the decoded
    // pixels instead would hold width x height x 3 bytes per queued job (48 MiB for one
    // 4096x4096 image, times up to max_queued jobs) in memory; the stored bytes are what a
    // restart and a retry run from anyway.
    const Admission admission =
        model->admit(request.params_json, request.input, backend_,
                     TaskLimits{options_.memory_budget, options_.decode_limits});
    Job job;
    job.session_id = request.session_id;
    job.model = request.model;
    job.task = model->kind();
    job.params_json = admission.params_json;
    job.tile = admission.tile;
    job.priority = request.priority;
    job.idempotency_key = request.idempotency_key;
    job.request_hash = request.request_hash;
    job.input_width = admission.width;
    job.input_height = admission.height;

    std::lock_guard submit_lock(submit_mutex_);
    if (auto earlier = replay())  // a concurrent request with the same key won
        return *earlier;
    return enqueue_new(std::move(job), admission.stored_input);
}

std::shared_ptr<const TaskModel> Scheduler::task_model(const std::string& name) {
    try {
        return models_.acquire(name);
    } catch (const core::Error& e) {
        if (e.code() == core::ErrorCode::NOT_FOUND)
            throw SchedulerError(SchedulerCode::MODEL_NOT_FOUND, "unknown model '" + name + "'");
        throw;
    }
}

std::vector<ModelDescription> Scheduler::describe_models() {
    std::vector<ModelDescription> out;
    for (const weights::ModelInfo& info : registry_.list()) {
        if (!info.error.empty())
            continue;  // unreadable files are logged when listed, not served
        const auto kind = parse_task_kind(info.task);
        if (!kind)
            continue;
        ModelDescription description;
        description.name = info.name;
        description.task = *kind;
        description.arch = info.arch_name;
        description.parameters = info.param_count;
        description.scale = info.scale;
        description.family = info.family;
        description.noise = info.noise;
        if (*kind == TaskKind::GENERATE) {
            // Its prompts and default size are known once loaded (a small model, kept in the
            // cache as any other and shared with the workers).
            try {
                models_.acquire(info.name)->describe(description);
            } catch (const std::exception& e) {
                spdlog::warn("model {}: {}", info.name, e.what());
                continue;
            }
        }
        out.push_back(std::move(description));
    }
    return out;
}

void Scheduler::check_queue_limits(const std::string& session_id) const {
    std::lock_guard lock(mutex_);
    if (queue_->size() >= options_.max_queued)
        throw queue_full_error(true);
    if (queue_->session_size(session_id) >= options_.max_queued_per_session)
        throw queue_full_error(false);
}

SchedulerError Scheduler::queue_full_error(bool whole_queue) const {
    if (whole_queue) {
        return SchedulerError(SchedulerCode::QUEUE_FULL,
                              "the queue is full (" + std::to_string(options_.max_queued) +
                                  " jobs); retry after the suggested delay",
                              retry_after_locked());
    }
    return SchedulerError(SchedulerCode::SESSION_QUEUE_FULL,
                          "this session already has " +
                              std::to_string(options_.max_queued_per_session) +
                              " queued jobs (the limit); wait for some to start",
                          retry_after_locked());
}

void Scheduler::check_storage_limit(const std::string& session_id, size_t input_bytes) {
    const uint64_t limit = options_.max_stored_bytes_per_session;
    if (limit == 0)
        return;
    const uint64_t stored = results_.session_bytes(session_id);
    if (stored + input_bytes > limit) {
        throw SchedulerError(SchedulerCode::SESSION_STORAGE_FULL,
                             "this session stores " + std::to_string(stored) +
                                 " bytes of inputs and outputs and the limit is " +
                                 std::to_string(limit) + "; delete finished jobs to make room");
    }
}

SubmitResult Scheduler::enqueue_new(Job job, const std::vector<uint8_t>& input) {
    check_queue_limits(job.session_id);
    check_storage_limit(job.session_id, input.size());
    job.id = random_id();
    job.status = JobStatus::QUEUED;
    job.created_at = now_ms();
    results_.put(job.session_id, job.id, input_file_name, input);
    std::optional<Job> holder;
    try {
        holder = jobs_.insert_job_unless_key_held(job);
    } catch (const core::Error& e) {
        // A shared store out of reach may have taken the insert and lost the answer: the
        // input stays for the job that may exist (a client resubmitting with its key finds
        // it); otherwise it is a small file the session's deletion or expiry removes.
        if (e.code() != core::ErrorCode::UNAVAILABLE)
            results_.remove_job(job.session_id, job.id);
        throw;
    }
    if (holder) {  // another node's request with the same key won
        results_.remove_job(job.session_id, job.id);
        return existing_job(std::move(*holder), job.request_hash);
    }
    const auto session = jobs_.find_session(job.session_id);
    PushResult pushed;
    {
        std::lock_guard lock(mutex_);
        queue_->set_paused(job.session_id, session && session->paused);
        // The limits again, checked with the push as one step: nodes sharing the queue may
        // have filled it since check_queue_limits.
        pushed =
            queue_->push_within(job.session_id, job.id, job.priority,
                                QueueLimits{options_.max_queued, options_.max_queued_per_session});
        if (pushed.queued())  // ALREADY_THERE: a resend after a lost reply found it queued
            apply_live_state(job);
    }
    if (!pushed.queued()) {
        jobs_.delete_job(job.session_id, job.id);
        results_.remove_job(job.session_id, job.id);
        std::lock_guard lock(mutex_);
        throw queue_full_error(pushed.outcome == PushOutcome::QUEUE_FULL);
    }
    wake_.notify_one();
    notify(SchedulerEventKind::QUEUED, job.session_id, job.id, pushed.queue_op);
    return SubmitResult{std::move(job), false};
}

SubmitResult Scheduler::existing_job(Job job, const std::string& request_hash) {
    if (!constant_time_equal(job.request_hash, request_hash)) {
        throw SchedulerError(SchedulerCode::IDEMPOTENCY_REUSED,
                             "this idempotency key was used with a different request; use a "
                             "new key for a new job");
    }
    std::lock_guard lock(mutex_);
    // Stored as queued, yet maybe never pushed: a request that failed between the two (the
    // store out of reach) and is now resubmitted with its key. Pushing is a no-op for a job
    // already queued or claimed; one that ended meanwhile is skipped by the worker that pops it.
    if (job.status == JobStatus::QUEUED)
        queue_->push_within(job.session_id, job.id, job.priority, QueueLimits{});
    apply_live_state(job);
    return SubmitResult{std::move(job), true};
}

size_t Scheduler::repair_queue(std::chrono::milliseconds min_age) {
    const int64_t before = now_ms() - min_age.count();
    size_t repaired = 0;
    for (const Job& job : jobs_.unfinished_jobs()) {
        if (job.status != JobStatus::QUEUED || job.created_at > before)
            continue;
        std::lock_guard lock(mutex_);
        // Left as it is when queued or claimed (popped, not yet marked running). The queue
        // knows its paused sessions already (set_session_paused).
        const PushResult result =
            queue_->push_within(job.session_id, job.id, job.priority, QueueLimits{});
        if (result.outcome == PushOutcome::PUSHED) {
            spdlog::warn("job {}: stored as queued but missing from the queue; queued again",
                         job.id);
            ++repaired;
        }
    }
    if (repaired > 0)
        wake_.notify_all();
    return repaired;
}

void Scheduler::apply_live_state(Job& job) {
    if (auto it = running_.find(job.id); it != running_.end()) {
        job.progress_done = it->second.done;
        job.progress_total = it->second.total;
    }
    job.position = -1;
    if (job.status == JobStatus::QUEUED) {
        // A queued job the queue does not hold is one a worker has just popped and not yet
        // marked running (nothing starts before it), or one committed and about to be pushed.
        const auto pos = queue_->position(job.session_id, job.id);
        job.position = pos ? *pos : 0;
    }
}

std::optional<Job> Scheduler::get(const std::string& session_id, const std::string& id) {
    auto job = jobs_.find_job(session_id, id);
    if (job) {
        std::lock_guard lock(mutex_);
        apply_live_state(*job);
    }
    return job;
}

std::vector<Job> Scheduler::list(const std::string& session_id, const JobQuery& query) {
    std::vector<Job> jobs = jobs_.list_jobs(session_id, query);
    std::lock_guard lock(mutex_);
    for (Job& job : jobs)
        apply_live_state(job);
    return jobs;
}

void Scheduler::worker_loop(engine::ExecutionContext& context) {
    for (;;) {
        // Plans of this context that an eviction retired (from any thread) are destroyed
        // here, on the thread that owns the context's stream, never while it is in use.
        models_.release_retired(context);
        QueuedJob next;
        std::shared_ptr<std::atomic<bool>> cancel;
        {
            std::unique_lock lock(mutex_);
            bool release = false;
            for (;;) {
                if (stopping_) {
                    lock.unlock();
                    models_.drop_plans(context);  // on this thread, before the context goes
                    return;
                }
                if (!workers_paused_) {
                    try {
                        if (auto popped = queue_->pop()) {
                            next = std::move(*popped);
                            break;
                        }
                    } catch (const core::Error& e) {
                        // A shared queue out of reach: this worker tries again after a poll
                        // (the node's change poll says once that the store is away).
                        spdlog::debug("the job queue: {}; retrying", e.what());
                    }
                }
                if (models_.has_retired(context)) {
                    release = true;
                    break;
                }
                // Other nodes push to a shared queue without waking this one: poll it.
                if (options_.shared_queue)
                    wake_.wait_for(lock, options_.queue_poll);
                else
                    wake_.wait(lock);
            }
            if (release)
                continue;
            cancel = std::make_shared<std::atomic<bool>>(false);
            Running running;
            running.session_id = next.session_id;
            running.cancel = cancel;
            running.queued = next;
            running_[next.job_id] = std::move(running);
        }
        bool done = true;
        try {
            done = run_job(next, context, *cancel);
        } catch (const std::exception& e) {
            // A store failure while recording the job: it stays as stored (queued or
            // running) and the next start picks it up again; this worker carries on.
            spdlog::error("job {}: {}", next.job_id, e.what());
            done = false;
        }
        {
            std::lock_guard lock(mutex_);
            running_.erase(next.job_id);
            // Ended here, or left queued in the store for the next start: either way this
            // worker's claim on it is over. A shared queue's claim on a job left as stored is
            // kept instead, so that it expires and some node (this one, restarted) re-runs it.
            if (done || !options_.shared_queue) {
                try {
                    queue_->ack(next);
                } catch (const std::exception& e) {
                    spdlog::error("job {}: the queue did not take the ack: {}", next.job_id,
                                  e.what());
                }
            }
        }
        idle_.notify_all();
    }
}

void Scheduler::watchdog_loop() {
    using std::chrono::milliseconds;
    const bool timeouts = options_.job_timeout.count() > 0;
    auto tick = timeouts ? std::clamp<milliseconds>(options_.job_timeout, milliseconds(10),
                                                    milliseconds(250))
                         : options_.claim_renew;
    if (options_.shared_queue)
        tick = std::clamp<milliseconds>(std::min(tick, options_.claim_renew), milliseconds(1),
                                        milliseconds(250));
    auto next_renew = std::chrono::steady_clock::now() + options_.claim_renew;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        watchdog_wake_.wait_for(lock, tick);
        if (stopping_)
            break;
        const auto now = std::chrono::steady_clock::now();
        if (timeouts) {
            for (auto& [id, running] : running_) {
                if (!running.timed_out && now - running.started > options_.job_timeout) {
                    running.timed_out = true;
                    running.cancel->store(true);
                }
            }
        }
        if (options_.shared_queue && now >= next_renew) {
            try {
                renew_claims();
                next_renew = now + options_.claim_renew;
            } catch (const core::Error& e) {
                spdlog::debug("renewing job claims: {}; retrying", e.what());
                next_renew = now + options_.queue_poll;
            }
        }
    }
}

void Scheduler::renew_claims() {
    for (auto& [id, running] : running_) {
        if (running.lost || queue_->renew(running.queued))
            continue;
        // Its claim expired and another node took the job over: that node owns it now.
        spdlog::warn("job {}: another node took it over; stopping it here", id);
        running.lost = true;
        running.cancel->store(true);
    }
}

void Scheduler::take_remote_cancel(const QueuedJob& queued) {
    std::lock_guard lock(mutex_);
    Running& r = running_.at(queued.job_id);
    bool requested = false;
    try {
        requested = queue_->cancel_requested(queued);
    } catch (const core::Error& e) {
        // The queue out of reach: the next tile asks again.
        spdlog::debug("job {}: cancel request not read: {}", queued.job_id, e.what());
    }
    if (requested)
        r.cancel_for_client();
}

bool Scheduler::holds_claim(const QueuedJob& queued) {
    std::lock_guard lock(mutex_);
    Running& r = running_.at(queued.job_id);
    if (r.lost)
        return false;
    if (!options_.shared_queue)
        return true;
    // A renewal now narrows the window in which a node that stalled past its claim's timeout
    // writes outputs while the node that took the job over runs it (to one round trip).
    try {
        if (!queue_->renew(queued)) {
            spdlog::warn("job {}: another node took it over; this run's outputs are dropped",
                         queued.job_id);
            r.lost = true;
        }
    } catch (const core::Error& e) {
        // Unknown: keep the result; the store write that follows waits for the store.
        spdlog::warn("job {}: claim not confirmed: {}", queued.job_id, e.what());
    }
    return !r.lost;
}

bool Scheduler::lost(const std::string& id) const {
    std::lock_guard lock(mutex_);
    const auto it = running_.find(id);
    return it != running_.end() && it->second.lost;
}

bool Scheduler::run_job(const QueuedJob& queued,
                        engine::ExecutionContext& context,
                        std::atomic<bool>& cancel) {
    auto found = jobs_.find_job(queued.session_id, queued.job_id);
    if (!found)
        return true;  // deleted meanwhile
    // Handed out again after a dead node's claim expired: it was running there, and is taken
    // up as start() takes up a job interrupted by a restart.
    const bool taken_over = queued.delivery > 1 && found->status == JobStatus::RUNNING;
    if (found->status != JobStatus::QUEUED && !taken_over)
        return true;  // cancelled or ended meanwhile
    Job job = std::move(*found);
    if (taken_over && job.attempts >= options_.max_attempts) {
        job.status = JobStatus::FAILED;
        job.finished_at = now_ms();
        job.error = JobError{"interrupted", "the server stopped while this job ran, " +
                                                std::to_string(job.attempts) + " times; retry it"};
        return finish(job, OnStoreError::WAIT);
    }
    if (options_.shared_queue)
        take_remote_cancel(queued);
    if (cancel) {  // before it started: a client (of any node), the watchdog or stop()
        if (!end_interrupted(job))
            return false;  // stopping: still as stored, the next start takes it up
        job.finished_at = now_ms();
        return finish(job, OnStoreError::WAIT);
    }
    job.status = JobStatus::RUNNING;
    job.started_at = now_ms();
    job.attempts += 1;
    job.error.reset();
    switch (record(job, OnStoreError::WAIT)) {
        case Recorded::YES:
            break;
        case Recorded::STOPPING:
            return false;  // still as stored: the next start
        case Recorded::DELETED:
        case Recorded::LOST:
            return true;
    }
    {
        std::lock_guard lock(mutex_);
        stats_.queue_wait_by_model[job.model].observe(
            static_cast<double>(job.started_at - job.created_at) / 1000.0);
    }
    notify(SchedulerEventKind::STARTED, job.session_id, job.id, queued.queue_op);

    const auto start = std::chrono::steady_clock::now();
    try {
        // An NVTX range per job in CUDA builds (Nsight Systems); no trace file in the server.
        const engine::TraceRange range(nullptr, "job " + job.id + " " + job.model, "job");
        const auto input = results_.get(job.session_id, job.id, input_file_name);
        if (!input)
            throw core::Error(core::ErrorCode::IO, "the job's input file is missing");
        auto last_persisted = std::chrono::steady_clock::now() - std::chrono::seconds(1);
        const auto on_progress = [&](int done, int total) {
            {
                std::lock_guard lock(mutex_);
                Running& r = running_.at(job.id);
                r.done = done;
                r.total = total;
            }
            // Progress reaches the store (and so the event streams) at most 4 times a second.
            const auto now = std::chrono::steady_clock::now();
            if (now - last_persisted >= std::chrono::milliseconds(250) && done < total &&
                !lost(job.id)) {
                last_persisted = now;
                job.progress_done = done;
                job.progress_total = total;
                try {
                    jobs_.update_job(job);
                } catch (const core::Error& e) {
                    // Progress is advisory: a full disk must not fail the job over it.
                    spdlog::debug("job {}: progress not recorded: {}", job.id, e.what());
                }
            }
            notify(SchedulerEventKind::PROGRESS, job.session_id, job.id);
            // A cancel asked on another node reaches this one between tiles or steps.
            if (options_.shared_queue && !cancel)
                take_remote_cancel(queued);
        };
        const auto model = models_.acquire(job.model);
        RunHooks hooks;
        hooks.cancel = &cancel;
        hooks.on_progress = on_progress;
        // The worker's cached plans: those built by earlier jobs of this model are reused.
        // Declared after `model`, so they are let go of first.
        const auto plans = options_.reuse_plans ? models_.plans(job.model, model, backend_, context)
                                                : model->make_plans(backend_, context);
        struct PlanAccount {  // the pool memory the run's new plans keep, success or not
            ModelCache& models;
            const std::string& name;
            engine::ExecutionContext& context;
            size_t budget;
            // Plans of other models evicted meanwhile shrink the pool: added back.
            int64_t before = static_cast<int64_t>(context.pool().bytes_in_use()) -
                             static_cast<int64_t>(models.plans_released(context));
            ~PlanAccount() {
                const int64_t after = static_cast<int64_t>(context.pool().bytes_in_use()) -
                                      static_cast<int64_t>(models.plans_released(context));
                models.account_plans(name, context, after - before, budget);
            }
        } account{models_, job.model, context, options_.memory_budget};
        const std::vector<RunOutput> outs =
            model->run(job, *input, plans.get(), backend_, context,
                       TaskLimits{options_.memory_budget, options_.decode_limits}, hooks);
        if (!holds_claim(queued))
            return true;  // the node that took it over writes the outputs
        job.outputs.clear();
        for (size_t k = 0; k < outs.size(); ++k)
            job.outputs.push_back(store_output(job, static_cast<int>(k), outs[k]));
        job.status = JobStatus::SUCCEEDED;
    } catch (const core::Error& e) {
        if (e.code() == core::ErrorCode::CANCELLED) {
            if (lost(job.id))
                return true;
            if (!end_interrupted(job))
                return false;  // interrupted by stop(): stays running, the next start re-runs it
        } else {
            job.status = JobStatus::FAILED;
            job.error = JobError{std::string(core::error_code_name(e.code())), e.what()};
        }
    } catch (const std::exception& e) {
        job.status = JobStatus::FAILED;
        job.error = JobError{"internal", e.what()};
    }
    if (job.status != JobStatus::SUCCEEDED)
        job.outputs.clear();  // those written before a failure are not served
    job.finished_at = now_ms();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
        std::lock_guard lock(mutex_);
        const Running& r = running_.at(job.id);
        job.progress_done = r.done;
        job.progress_total = r.total;
        stats_.run_time_by_model[job.model].observe(seconds);
        if (job.status == JobStatus::SUCCEEDED) {
            mean_run_seconds_ =
                mean_run_seconds_ == 0 ? seconds : 0.8 * mean_run_seconds_ + 0.2 * seconds;
        }
    }
    // Again just before the final write: writing the outputs (to a shared folder) may have
    // taken long enough for the claim to expire and another node to take the job over.
    if (!holds_claim(queued))
        return true;
    return finish(job, OnStoreError::WAIT);
}

bool Scheduler::end_interrupted(Job& job) {
    std::lock_guard lock(mutex_);
    const Running& r = running_.at(job.id);
    if (r.timed_out) {
        job.status = JobStatus::FAILED;
        job.error = JobError{"timeout", "the job ran longer than the limit of " +
                                            std::to_string(options_.job_timeout.count()) + " ms"};
        return true;
    }
    if (stopping_ && !r.user_cancelled)
        return false;
    job.status = JobStatus::CANCELLED;
    return true;
}

JobOutput Scheduler::store_output(const Job& job, int index, const RunOutput& out) {
    results_.put(job.session_id, job.id, thumbnail_file_name(index), out.thumbnail_png);
    results_.put(job.session_id, job.id, output_file_name(index), out.png);
    const std::string digest =
        sha256_hex(std::string_view(reinterpret_cast<const char*>(out.png.data()), out.png.size()));
    return JobOutput{index, out.width, out.height, "image/png", digest.substr(0, 32)};
}

Scheduler::Recorded Scheduler::record(Job& job, OnStoreError on_error) {
    auto pause = std::chrono::milliseconds(100);
    bool warned = false;
    for (;;) {
        if (lost(job.id))
            return Recorded::LOST;  // the node that took it over records it
        try {
            return jobs_.update_job(job) ? Recorded::YES : Recorded::DELETED;
        } catch (const core::Error& e) {
            const bool store_failed = e.code() == core::ErrorCode::NO_SPACE ||
                                      e.code() == core::ErrorCode::IO ||
                                      e.code() == core::ErrorCode::UNAVAILABLE;
            if (on_error == OnStoreError::THROW || !store_failed)
                throw;
            if (!warned) {
                spdlog::warn(
                    "job {}: cannot record it as {} ({}); retrying until the store "
                    "takes it",
                    job.id, job_status_name(job.status), e.what());
                warned = true;
            }
        }
        std::unique_lock lock(mutex_);
        if (store_retry_wake_.wait_for(lock, pause, [this] { return stopping_; }))
            return Recorded::STOPPING;
        pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::seconds(10));
    }
}

void Scheduler::requeue(const std::string& session_id, const std::vector<std::string>& ids) {
    for (const std::string& id : ids) {
        const auto job = jobs_.find_job(session_id, id);
        if (!job || job->status != JobStatus::QUEUED)
            continue;
        std::lock_guard lock(mutex_);
        queue_->push(session_id, id, job->priority);
    }
    wake_.notify_all();
}

bool Scheduler::finish(Job& job, OnStoreError on_error) {
    const Recorded recorded = record(job, on_error);
    if (recorded == Recorded::DELETED)
        results_.remove_job(job.session_id, job.id);  // deleted while it ran
    if (recorded == Recorded::STOPPING)
        return false;
    if (recorded != Recorded::YES)
        return true;
    {
        std::lock_guard lock(mutex_);
        ++stats_.finished_by_status[std::string(job_status_name(job.status))];
    }
    notify(SchedulerEventKind::FINISHED, job.session_id, job.id);
    return true;
}

CancelOutcome Scheduler::cancel(const std::string& session_id, const std::string& id) {
    auto job = jobs_.find_job(session_id, id);
    if (!job)
        throw SchedulerError(SchedulerCode::NOT_FOUND, "no job " + id + " in this session");
    bool dequeued = false;
    {
        std::lock_guard lock(mutex_);
        dequeued = queue_->remove(session_id, id);
        if (!dequeued) {
            if (auto it = running_.find(id); it != running_.end()) {
                it->second.cancel_for_client();
                return CancelOutcome::STOPPING;
            }
            // Claimed by another node (a shared queue): it stops the job at its next tile or
            // step, or before it starts.
            if (queue_->request_cancel(session_id, id))
                return CancelOutcome::STOPPING;
        }
    }
    if (dequeued) {
        job->status = JobStatus::CANCELLED;
        job->finished_at = now_ms();
        try {
            finish(*job, OnStoreError::THROW);
        } catch (...) {
            requeue(session_id, {id});  // not cancelled: still queued, as the store says
            throw;
        }
        return CancelOutcome::CANCELLED;
    }
    job = jobs_.find_job(session_id, id);
    if (!job)
        throw SchedulerError(SchedulerCode::NOT_FOUND, "no job " + id + " in this session");
    throw SchedulerError(SchedulerCode::CONFLICT,
                         "the job is already " + std::string(job_status_name(job->status)) +
                             "; only queued or running jobs can be cancelled");
}

SubmitResult Scheduler::retry(const std::string& session_id, const std::string& id) {
    if (!accepting())
        throw SchedulerError(SchedulerCode::DRAINING, "the server is shutting down; retry later",
                             5);
    auto old = jobs_.find_job(session_id, id);
    if (!old)
        throw SchedulerError(SchedulerCode::NOT_FOUND, "no job " + id + " in this session");
    if (old->status != JobStatus::FAILED && old->status != JobStatus::CANCELLED) {
        throw SchedulerError(SchedulerCode::CONFLICT,
                             "the job is " + std::string(job_status_name(old->status)) +
                                 "; only failed or cancelled jobs can be retried");
    }
    const auto input = results_.get(session_id, id, input_file_name);
    if (!input)
        throw SchedulerError(SchedulerCode::CONFLICT, "the job's input is no longer kept");
    Job job;
    job.session_id = session_id;
    job.model = old->model;
    job.task = old->task;
    job.params_json = old->params_json;
    job.tile = old->tile;
    job.priority = old->priority;
    job.retry_of = old->id;
    job.input_width = old->input_width;
    job.input_height = old->input_height;
    std::lock_guard submit_lock(submit_mutex_);
    return enqueue_new(std::move(job), *input);
}

void Scheduler::remove(const std::string& session_id, const std::string& id) {
    if (!jobs_.find_job(session_id, id))
        throw SchedulerError(SchedulerCode::NOT_FOUND, "no job " + id + " in this session");
    {
        std::lock_guard lock(mutex_);
        if (!queue_->remove(session_id, id)) {
            if (auto it = running_.find(id); it != running_.end()) {
                it->second.cancel_for_client();
            } else {
                queue_->request_cancel(session_id, id);  // running on another node
            }
        }
    }
    jobs_.delete_job(session_id, id);
    results_.remove_job(session_id, id);
    notify(SchedulerEventKind::REMOVED, session_id, id);
}

std::optional<StoredInput> Scheduler::input(const std::string& session_id, const std::string& id) {
    const auto job = jobs_.find_job(session_id, id);
    if (!job)
        throw SchedulerError(SchedulerCode::NOT_FOUND, "no job " + id + " in this session");
    auto bytes = results_.get(session_id, id, input_file_name);
    if (!bytes)
        return std::nullopt;
    StoredInput out;
    // The kind from the registry's listing (no model is loaded to answer this); a model since
    // removed from the folder: the bytes tell what they can.
    TaskKind kind = TaskKind::UPSCALE;
    try {
        kind = task_kind_of(registry_, job->model);
    } catch (const core::Error&) {
        if (!bytes->empty() && bytes->front() == '{')
            kind = TaskKind::GENERATE;
    }
    out.content_type = stored_input_content_type(kind, *bytes);
    out.bytes = std::move(*bytes);
    return out;
}

void Scheduler::remove_session(const std::string& session_id) {
    {
        std::lock_guard lock(mutex_);
        queue_->clear_session(session_id);
        queue_->set_paused(session_id, false);
        for (auto& [id, running] : running_) {
            if (running.session_id == session_id) {
                running.cancel_for_client();
            }
        }
    }
    if (options_.shared_queue) {  // the session's jobs running on other nodes
        JobQuery query;
        query.status = JobStatus::RUNNING;
        query.limit = 1000;
        for (const Job& job : jobs_.list_jobs(session_id, query)) {
            std::lock_guard lock(mutex_);
            queue_->request_cancel(session_id, job.id);
        }
    }
    jobs_.delete_session(session_id);
    results_.remove_session(session_id);
}

QueueInfo Scheduler::queue_info(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    QueueInfo info;
    info.paused = queue_->is_paused(session_id);
    info.queued = queue_->session_size(session_id);
    for (const auto& [id, running] : running_)
        info.running += running.session_id == session_id ? 1 : 0;
    return info;
}

void Scheduler::set_session_paused(const std::string& session_id, bool paused) {
    jobs_.set_session_paused(session_id, paused);
    {
        std::lock_guard lock(mutex_);
        queue_->set_paused(session_id, paused);
    }
    wake_.notify_all();
}

size_t Scheduler::clear_session_queue(const std::string& session_id) {
    std::vector<std::string> ids;
    {
        std::lock_guard lock(mutex_);
        ids = queue_->clear_session(session_id);
    }
    for (size_t k = 0; k < ids.size(); ++k) {
        auto job = jobs_.find_job(session_id, ids[k]);
        if (!job)
            continue;
        job->status = JobStatus::CANCELLED;
        job->finished_at = now_ms();
        try {
            finish(*job, OnStoreError::THROW);
        } catch (...) {
            // The rest stay queued, as the store still says they are.
            requeue(session_id, std::vector<std::string>(
                                    ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end()));
            throw;
        }
    }
    return ids.size();
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard lock(mutex_);
    SchedulerStats out = stats_;
    out.queued = queue_->size();
    out.running = running_.size();
    for (const auto& context : contexts_) {
        out.pool_bytes_in_use += context->pool().bytes_in_use();
        out.pool_bytes_cached += context->pool().bytes_cached();
        out.pool_bytes_peak += context->pool().peak_bytes();
    }
    out.plan_cache_hits = models_.plan_hits();
    out.plan_cache_misses = models_.plan_misses();
    out.models = models_.loaded();
    return out;
}

void Scheduler::pause_workers() {
    std::lock_guard lock(mutex_);
    workers_paused_ = true;
}

void Scheduler::resume_workers() {
    {
        std::lock_guard lock(mutex_);
        workers_paused_ = false;
    }
    wake_.notify_all();
}

}  // namespace kiln::scheduler
