#include "scheduler/local_result_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "scheduler/ids.h"

namespace kiln::scheduler {

namespace fs = std::filesystem;

namespace {

void require_id(const std::string& id) {
    // Ids become path components: only the generated shape is ever accepted.
    if (!is_valid_id(id))
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "result store: malformed id");
}

void write_all(int fd, const std::vector<uint8_t>& bytes, const fs::path& path) {
    size_t written = 0;
    while (written < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw core::Error(core::ErrorCode::IO,
                              "write " + path.string() + ": " + std::strerror(errno));
        written += static_cast<size_t>(n);
    }
}

}  // namespace

LocalResultStore::LocalResultStore(fs::path root) : root_(std::move(root)) {
    fs::create_directories(root_);
}

fs::path LocalResultStore::job_dir(const std::string& session_id, const std::string& job_id) const {
    require_id(session_id);
    require_id(job_id);
    return root_ / session_id / job_id;
}

void LocalResultStore::put(const std::string& session_id,
                           const std::string& job_id,
                           const std::string& name,
                           const std::vector<uint8_t>& bytes) {
    const fs::path dir = job_dir(session_id, job_id);
    fs::create_directories(dir);
    const fs::path final_path = dir / name;
    const fs::path temp_path = dir / ("." + name + "." + random_id() + ".tmp");
    const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        throw core::Error(core::ErrorCode::IO,
                          "create " + temp_path.string() + ": " + std::strerror(errno));
    try {
        write_all(fd, bytes, temp_path);
        if (::fsync(fd) != 0)
            throw core::Error(core::ErrorCode::IO, "fsync " + temp_path.string());
    } catch (...) {
        ::close(fd);
        ::unlink(temp_path.c_str());
        throw;
    }
    ::close(fd);
    if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
        ::unlink(temp_path.c_str());
        throw core::Error(core::ErrorCode::IO, "rename to " + final_path.string());
    }
}

std::optional<std::vector<uint8_t>> LocalResultStore::get(const std::string& session_id,
                                                          const std::string& job_id,
                                                          const std::string& name) {
    std::ifstream in(job_dir(session_id, job_id) / name, std::ios::binary);
    if (!in)
        return std::nullopt;
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void LocalResultStore::remove_job(const std::string& session_id, const std::string& job_id) {
    std::error_code ec;
    fs::remove_all(job_dir(session_id, job_id), ec);
}

void LocalResultStore::remove_session(const std::string& session_id) {
    require_id(session_id);
    std::error_code ec;
    fs::remove_all(root_ / session_id, ec);
}

}  // namespace kiln::scheduler
