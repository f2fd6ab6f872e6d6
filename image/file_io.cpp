#include "image/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace kiln::image {
namespace {

[[noreturn]] void file_throw_errno(const std::string& what,
                                   const std::filesystem::path& path,
                                   int error) {
    throw core::Error(error == ENOENT ? core::ErrorCode::NOT_FOUND : core::ErrorCode::IO,
                      what + " " + path.string() + ": " + std::strerror(error));
}

class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;

    int get() const { return fd_; }
    // close() reports delayed write errors, so the write path checks it.
    int close() {
        const int result = ::close(fd_);
        fd_ = -1;
        return result;
    }

  private:
    int fd_;
};

}  // namespace

std::vector<uint8_t> file_read_bytes(const std::filesystem::path& path, int64_t max_bytes) {
    FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (file.get() < 0) {
        file_throw_errno("cannot open", path, errno);
    }
    struct stat info {};
    if (::fstat(file.get(), &info) != 0) {
        file_throw_errno("cannot stat", path, errno);
    }
    if (!S_ISREG(info.st_mode)) {
        throw core::Error(core::ErrorCode::IO, "not a regular file: " + path.string());
    }
    if (info.st_size > max_bytes) {
        throw core::Error(core::ErrorCode::TOO_LARGE,
                          path.string() + " is " + std::to_string(info.st_size) +
                              " bytes, over the limit of " + std::to_string(max_bytes) + " bytes");
    }
    std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(file.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            file_throw_errno("cannot read", path, errno);
        }
        if (n == 0) {
            throw core::Error(core::ErrorCode::IO, path.string() + " shrank while being read");
        }
        done += static_cast<size_t>(n);
    }
    return bytes;
}

void file_write_atomic(const std::filesystem::path& path, std::span<const uint8_t> bytes) {
    std::string temp = path.string() + ".tmp.XXXXXX";
    FileDescriptor file(::mkstemp(temp.data()));
    if (file.get() < 0) {
        file_throw_errno("cannot create a temporary file for", path, errno);
    }
    // From here on, any failure removes the temporary file.
    auto fail = [&](const std::string& what, int error) {
        ::unlink(temp.c_str());
        file_throw_errno(what, path, error);
    };
    if (::fchmod(file.get(), 0644) != 0) {
        fail("cannot chmod the temporary file for", errno);
    }
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(file.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fail("cannot write", errno);
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(file.get()) != 0) {
        fail("cannot sync", errno);
    }
    if (file.close() != 0) {
        fail("cannot close", errno);
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        fail("cannot rename the temporary file to", errno);
    }
    // Make the rename itself durable; a failure here leaves a complete file, so it is ignored.
    const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : ".";
    FileDescriptor dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() >= 0) {
        ::fsync(dir.get());
    }
}

}  // namespace kiln::image
