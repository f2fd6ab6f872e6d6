// HTTP requests counted by route template and status, for /metrics.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace kiln::server {

class HttpMetrics {
  public:
    using Key = std::tuple<std::string, std::string, int>;  // method, route, status

    void record(const std::string& method, const std::string& route, int status) {
        std::lock_guard lock(mutex_);
        ++counts_[Key{method, route, status}];
    }
    std::map<Key, uint64_t> snapshot() const {
        std::lock_guard lock(mutex_);
        return counts_;
    }

  private:
    mutable std::mutex mutex_;
    std::map<Key, uint64_t> counts_;
};

}  // namespace kiln::server
