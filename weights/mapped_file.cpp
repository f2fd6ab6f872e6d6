#include "weights/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace kiln::weights {

namespace {

[[noreturn]] void throw_errno(const std::filesystem::path& path, const char* what) {
    const int err = errno;
    const core::ErrorCode code = err == ENOENT ? core::ErrorCode::NOT_FOUND : core::ErrorCode::IO;
    throw core::Error(code, path.string() + ": " + what + ": " + std::strerror(err));
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw_errno(path, "cannot open");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        throw_errno(path, "cannot stat");
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw core::Error(core::ErrorCode::IO, path.string() + ": not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            ::close(fd);
            throw_errno(path, "cannot mmap");
        }
        data_ = static_cast<const uint8_t*>(p);
        mapped_ = true;
    }
    ::close(fd);
}

MappedFile::~MappedFile() {
    if (mapped_)
        ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace kiln::weights
