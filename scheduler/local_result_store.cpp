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

// A failed write's error: a full disk (or quota) is NO_SPACE, anything else IO.
core::Error write_error(const std::string& what, const fs::path& path, int error) {
    const bool full = error == ENOSPC || error == EDQUOT;
    return core::Error(full ? core::ErrorCode::NO_SPACE : core::ErrorCode::IO,
                       what + " " + path.string() + ": " + std::strerror(error));
}

void write_all(int fd, const std::vector<uint8_t>& bytes, const fs::path& path) {
    size_t written = 0;
    while (written < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw write_error("write", path, errno);
        if (n == 0)  // no progress and no error: the file system is out of space
            throw write_error("write", path, ENOSPC);
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
    std::error_code made;
    fs::create_directories(dir, made);
    if (made)
        throw write_error("create", dir, made.value());
    const fs::path final_path = dir / name;
    const fs::path temp_path = dir / ("." + name + "." + random_id() + ".tmp");
    const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        throw write_error("create", temp_path, errno);
    try {
        write_all(fd, bytes, temp_path);
        if (::fsync(fd) != 0)
            throw write_error("fsync", temp_path, errno);
    } catch (...) {
        ::close(fd);
        ::unlink(temp_path.c_str());
        throw;
    }
    ::close(fd);
    if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
        const int error = errno;
        ::unlink(temp_path.c_str());
        throw write_error("rename to", final_path, error);
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

uint64_t LocalResultStore::session_bytes(const std::string& session_id) {
    require_id(session_id);
    uint64_t total = 0;
    std::error_code ec;
    // Files vanish while this walks (jobs deleted, temporaries renamed): skipped, not errors.
    for (fs::recursive_directory_iterator it(root_ / session_id, ec), end; !ec && it != end;
         it.increment(ec)) {
        std::error_code size_error;
        const uintmax_t size = it->is_regular_file(size_error) ? it->file_size(size_error) : 0;
        if (!size_error)
            total += size;
    }
    return total;
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
