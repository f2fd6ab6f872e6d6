// ResultStore in a local directory: <root>/<session>/<job>/<name>.
#pragma once

#include <filesystem>

#include "scheduler/result_store.h"

namespace kiln::scheduler {

class LocalResultStore final : public ResultStore {
  public:
    explicit LocalResultStore(std::filesystem::path root);

    void put(const std::string& session_id,
             const std::string& job_id,
             const std::string& name,
             const std::vector<uint8_t>& bytes) override;
    std::optional<std::vector<uint8_t>> get(const std::string& session_id,
                                            const std::string& job_id,
                                            const std::string& name) override;
    uint64_t session_bytes(const std::string& session_id) override;
    void remove_job(const std::string& session_id, const std::string& job_id) override;
    void remove_session(const std::string& session_id) override;

  private:
    std::filesystem::path job_dir(const std::string& session_id, const std::string& job_id) const;

    std::filesystem::path root_;
};

}  // namespace kiln::scheduler
