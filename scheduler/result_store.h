// Where job inputs and output images live, scoped by (session, job). A file is visible only
// once complete: writers go through a temporary name and an atomic rename.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::scheduler {

class ResultStore {
  public:
    virtual ~ResultStore() = default;
    // `name` is chosen by the scheduler ("input", "output-0.png"), never by a client.
    virtual void put(const std::string& session_id,
                     const std::string& job_id,
                     const std::string& name,
                     const std::vector<uint8_t>& bytes) = 0;
    virtual std::optional<std::vector<uint8_t>> get(const std::string& session_id,
                                                    const std::string& job_id,
                                                    const std::string& name) = 0;
    // Bytes the session's files take (inputs, outputs, thumbnails), for its storage limit.
    virtual uint64_t session_bytes(const std::string& session_id) = 0;
    virtual void remove_job(const std::string& session_id, const std::string& job_id) = 0;
    virtual void remove_session(const std::string& session_id) = 0;
};

}  // namespace kiln::scheduler
