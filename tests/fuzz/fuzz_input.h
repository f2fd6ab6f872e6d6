// What every libFuzzer target here shares: readers that take a path get the input through a
// file of this process's own (the readers map their files), and a reader's refusal is a
// core::Error or an ApiError; anything else escaping is a finding (the target aborts).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

namespace kiln::fuzz {

// A file holding `size` bytes of `data`, one path per process and suffix (readers pick the
// format by content, and ncnn/pth by extension in some messages only).
inline std::filesystem::path input_file(const uint8_t* data, size_t size, const char* suffix) {
    static const std::filesystem::path dir = [] {
        const char* shm = "/dev/shm";
        std::filesystem::path base =
            std::filesystem::is_directory(shm) ? shm : std::filesystem::temp_directory_path();
        return base / ("kiln-fuzz-" + std::to_string(::getpid()));
    }();
    std::filesystem::create_directories(dir);
    const std::filesystem::path path = dir / (std::string("input") + suffix);
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    return path;
}

// Called for an exception a reader must never let out.
[[noreturn]] inline void finding(const char* what) {
    std::fprintf(stderr, "fuzz finding: an exception other than a refusal escaped: %s\n", what);
    std::abort();
}

}  // namespace kiln::fuzz
