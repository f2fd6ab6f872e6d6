#include "server/client_limits.h"

#include <algorithm>

namespace kiln::server {

std::shared_ptr<SessionStreams::Slot> SessionStreams::open(const std::string& session_id,
                                                           size_t limit) {
    {
        std::lock_guard lock(mutex_);
        size_t& count = open_[session_id];
        if (count >= limit) {
            if (count == 0)
                open_.erase(session_id);
            return nullptr;
        }
        ++count;
    }
    return std::shared_ptr<Slot>(new Slot(*this, session_id));
}

// Runs on whichever thread drops the last copy of the slot: it only touches the map.
SessionStreams::Slot::~Slot() {
    owner_.close(session_id_);
}

void SessionStreams::close(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    const auto it = open_.find(session_id);
    if (it != open_.end() && --it->second == 0)
        open_.erase(it);
}

size_t SessionStreams::open_count(const std::string& session_id) const {
    std::lock_guard lock(mutex_);
    const auto it = open_.find(session_id);
    return it == open_.end() ? 0 : it->second;
}

void SessionCreationLimiter::forget_expired(int64_t now_ms) {
    for (auto it = created_.begin(); it != created_.end();) {
        std::deque<int64_t>& times = it->second;
        while (!times.empty() && times.front() <= now_ms - window_ms)
            times.pop_front();
        it = times.empty() ? created_.erase(it) : std::next(it);
    }
}

int64_t SessionCreationLimiter::admit(const std::string& client, int64_t now_ms, size_t per_hour) {
    if (per_hour == 0)
        return 0;
    std::lock_guard lock(mutex_);
    if (now_ms >= next_sweep_ms_) {  // at most once a minute: a sweep visits every address
        forget_expired(now_ms);
        next_sweep_ms_ = now_ms + 60 * 1000;
    }
    auto it = created_.find(client);
    if (it == created_.end()) {
        if (created_.size() >= max_clients)
            return 0;
        it = created_.emplace(client, std::deque<int64_t>{}).first;
    }
    std::deque<int64_t>& times = it->second;
    while (!times.empty() && times.front() <= now_ms - window_ms)
        times.pop_front();
    if (times.size() >= per_hour) {
        const int64_t wait_ms = times.front() + window_ms - now_ms;
        return std::max<int64_t>(1, (wait_ms + 999) / 1000);
    }
    times.push_back(now_ms);
    return 0;
}

std::string client_address(const httplib::Request& req, bool trust_forwarded_for) {
    if (trust_forwarded_for) {
        const std::string forwarded = req.get_header_value("X-Forwarded-For");
        const size_t comma = forwarded.rfind(',');
        std::string last = comma == std::string::npos ? forwarded : forwarded.substr(comma + 1);
        const auto not_space = [](char c) { return c != ' ' && c != '\t'; };
        last.erase(last.begin(), std::find_if(last.begin(), last.end(), not_space));
        last.erase(std::find_if(last.rbegin(), last.rend(), not_space).base(), last.end());
        if (!last.empty())
            return last;
    }
    return req.remote_addr;
}

}  // namespace kiln::server
