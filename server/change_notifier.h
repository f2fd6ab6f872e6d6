// Wakes event streams when any job changed. Streams then read what changed from the job
// store (update_seq > their cursor), so nothing depends on which thread notified first.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace kiln::server {

class ChangeNotifier {
  public:
    void notify() {
        {
            std::lock_guard lock(mutex_);
            ++generation_;
        }
        cv_.notify_all();
    }
    // Waits until a change after `seen` (updating it) or the timeout; false once closed.
    bool wait(uint64_t& seen, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, timeout, [&] { return closed_ || generation_ != seen; });
        seen = generation_;
        return !closed_;
    }
    uint64_t generation() const {
        std::lock_guard lock(mutex_);
        return generation_;
    }
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        cv_.notify_all();
    }
    bool closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }

  private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    uint64_t generation_ = 0;
    bool closed_ = false;
};

}  // namespace kiln::server
