#include "scheduler/fair_queue.h"

#include <algorithm>

namespace kiln::scheduler {

size_t FairQueue::SessionQueue::size() const {
    size_t n = 0;
    for (const auto& q : by_priority)
        n += q.size();
    return n;
}

std::vector<std::string> FairQueue::SessionQueue::ordered() const {
    std::vector<std::string> ids;
    for (const auto& q : by_priority)
        ids.insert(ids.end(), q.begin(), q.end());
    return ids;
}

uint64_t FairQueue::push(const std::string& session_id,
                         const std::string& job_id,
                         Priority priority) {
    auto [it, inserted] = queues_.try_emplace(session_id);
    if (inserted)
        rotation_.push_back(session_id);
    it->second.by_priority[static_cast<size_t>(priority)].push_back(job_id);
    ++size_;
    return ++next_op_;
}

PushResult FairQueue::push_within(const std::string& session_id,
                                  const std::string& job_id,
                                  Priority priority,
                                  const QueueLimits& limits) {
    if (claimed_.count({session_id, job_id}) > 0 || position(session_id, job_id))
        return {PushOutcome::ALREADY_THERE, ++next_op_};
    if (limits.max_queued > 0 && size_ >= limits.max_queued)
        return {PushOutcome::QUEUE_FULL, 0};
    if (limits.max_queued_per_session > 0 &&
        session_size(session_id) >= limits.max_queued_per_session)
        return {PushOutcome::SESSION_QUEUE_FULL, 0};
    return {PushOutcome::PUSHED, push(session_id, job_id, priority)};
}

std::optional<QueuedJob> FairQueue::pop() {
    for (auto it = rotation_.begin(); it != rotation_.end(); ++it) {
        if (paused_.count(*it))
            continue;
        const std::string session_id = *it;
        SessionQueue& queue = queues_.at(session_id);
        for (auto& q : queue.by_priority) {
            if (q.empty())
                continue;
            QueuedJob job{session_id, q.front(), ++next_op_, 1};
            claimed_.emplace(std::make_pair(session_id, job.job_id), false);
            q.pop_front();
            --size_;
            rotation_.erase(it);
            if (queue.size() == 0)
                queues_.erase(session_id);
            else
                rotation_.push_back(session_id);
            return job;
        }
    }
    return std::nullopt;
}

void FairQueue::ack(const QueuedJob& job) {
    claimed_.erase({job.session_id, job.job_id});
}

bool FairQueue::renew(const QueuedJob& job) {
    return claimed_.count({job.session_id, job.job_id}) > 0;
}

bool FairQueue::request_cancel(const std::string& session_id, const std::string& job_id) {
    const auto it = claimed_.find({session_id, job_id});
    if (it == claimed_.end())
        return false;
    it->second = true;
    return true;
}

bool FairQueue::cancel_requested(const QueuedJob& job) const {
    const auto it = claimed_.find({job.session_id, job.job_id});
    return it != claimed_.end() && it->second;
}

bool FairQueue::remove(const std::string& session_id, const std::string& job_id) {
    auto it = queues_.find(session_id);
    if (it == queues_.end())
        return false;
    for (auto& q : it->second.by_priority) {
        auto pos = std::find(q.begin(), q.end(), job_id);
        if (pos != q.end()) {
            q.erase(pos);
            --size_;
            drop_if_empty(session_id);
            return true;
        }
    }
    return false;
}

void FairQueue::drop_if_empty(const std::string& session_id) {
    auto it = queues_.find(session_id);
    if (it != queues_.end() && it->second.size() == 0) {
        queues_.erase(it);
        rotation_.remove(session_id);
    }
}

std::optional<int> FairQueue::position(const std::string& session_id,
                                       const std::string& job_id) const {
    auto it = queues_.find(session_id);
    if (it == queues_.end())
        return std::nullopt;
    const std::vector<std::string> own = it->second.ordered();
    const auto found = std::find(own.begin(), own.end(), job_id);
    if (found == own.end())
        return std::nullopt;
    const size_t k = static_cast<size_t>(found - own.begin());
    // Each round serves one job per active session in rotation order.
    size_t ahead = k;
    bool before = true;
    for (const std::string& other : rotation_) {
        if (other == session_id) {
            before = false;
            continue;
        }
        if (paused_.count(other))
            continue;
        ahead += std::min(queues_.at(other).size(), k + (before ? 1 : 0));
    }
    return static_cast<int>(ahead);
}

std::vector<std::string> FairQueue::clear_session(const std::string& session_id) {
    auto it = queues_.find(session_id);
    if (it == queues_.end())
        return {};
    std::vector<std::string> ids = it->second.ordered();
    size_ -= ids.size();
    queues_.erase(it);
    rotation_.remove(session_id);
    return ids;
}

void FairQueue::set_paused(const std::string& session_id, bool paused) {
    if (paused)
        paused_.insert(session_id);
    else
        paused_.erase(session_id);
}

bool FairQueue::is_paused(const std::string& session_id) const {
    return paused_.count(session_id) > 0;
}

size_t FairQueue::session_size(const std::string& session_id) const {
    auto it = queues_.find(session_id);
    return it == queues_.end() ? 0 : it->second.size();
}

}  // namespace kiln::scheduler
