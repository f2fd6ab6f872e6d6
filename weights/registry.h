// The model directory: every .safetensors, .pth and .param (with its .bin sibling) file is an
// upscaling model named by its file stem; every folder holding a diffusers UNet
// (config.json naming UNet2DConditionModel) is a generation model named by the folder. Listing
// describes each (loading it once; descriptions are cached by path, size and mtime); a file that
// cannot be read is listed with its error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "weights/arch.h"

namespace kiln::weights {

struct ModelInfo {
    std::string name;                          // file stem
    std::vector<std::filesystem::path> paths;  // one file, or .param then .bin
    std::string format;                        // "safetensors", "pth", "ncnn", "diffusers"
    std::string task;                          // "upscale" or "generate"
    std::string arch_name;                     // empty when error is set
    std::string family;  // "Real-ESRGAN", "waifu2x", "Real-CUGAN"; empty for generation models
    // The denoise level the file name states, for the families that ship one file per level
    // (waifu2x "noise2", Real-CUGAN "denoise2x"): "0".."3", "conservative", "none"; else empty.
    std::string noise;
    int scale = 0;  // upscaling factor; 0 for generation models
    int64_t param_count = 0;
    std::string stored_dtype;  // dtype holding most parameters: "F32", "F16", "BF16"
    std::string error;         // why the file could not be read or detected; empty when fine
};

// Where one model's files are and what kind they are, found without reading them.
struct ModelFiles {
    std::string name;
    std::string format;  // as ModelInfo::format
    std::string task;    // as ModelInfo::task
    std::vector<std::filesystem::path> paths;
};

// The denoise level a waifu2x or Real-CUGAN file's name states (ModelInfo::noise).
std::string noise_level_of_name(const std::string& stem);

// Reads and detects one model file set (no caching). Throws kiln::core::Error.
DetectedModel load_model_files(const std::string& format,
                               const std::vector<std::filesystem::path>& paths);

class ModelRegistry {
  public:
    explicit ModelRegistry(std::filesystem::path directory);

    // Every model, sorted by name. The directory is listed again only when its or a
    // subfolder's modification time changed (a file added, removed or renamed into place); a
    // file's description is cached by its path, size and mtime.
    std::vector<ModelInfo> list();
    // The files of `name`; core::Error(NOT_FOUND) listing the available names when absent.
    ModelFiles locate(const std::string& name);
    // core::Error(NOT_FOUND) listing the available names when `name` is absent;
    // core::Error(UNSUPPORTED) when `name` is a generation model.
    DetectedModel load(const std::string& name);
    // The folder of the generation model `name`; core::Error(NOT_FOUND) as load().
    std::filesystem::path generation_model_dir(const std::string& name);

  private:
    struct Candidate {
        std::string name;
        std::string format;
        std::vector<std::filesystem::path> paths;
    };
    struct CacheKey {
        std::vector<std::filesystem::path> paths;
        std::vector<uintmax_t> sizes;
        std::vector<int64_t> mtimes;
        auto operator<=>(const CacheKey&) const = default;
    };

    std::vector<Candidate> scan();  // under mutex_
    std::vector<Candidate> scan_directory(std::vector<std::filesystem::path>& subdirectories) const;
    // The mtimes of the directory and listing_dirs_.
    std::vector<std::optional<std::filesystem::file_time_type>> listing_stamp() const;
    Candidate find(const std::string& name);
    static CacheKey key_of(const Candidate& c);
    ModelInfo describe(const Candidate& c);

    std::filesystem::path directory_;
    std::mutex mutex_;
    std::map<CacheKey, ModelInfo> cache_;
    // The last scan, reused while listing_stamp() is listing_stamp_.
    std::vector<Candidate> listing_;
    std::vector<std::filesystem::path> listing_dirs_;
    std::vector<std::optional<std::filesystem::file_time_type>> listing_stamp_;
};

}  // namespace kiln::weights
