#include "weights/registry.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <system_error>

#include "core/error.h"
#include "weights/arch_metadata.h"
#include "weights/diffusers_unet.h"
#include "weights/ncnn.h"
#include "weights/ncnn_import.h"
#include "weights/pth.h"
#include "weights/safetensors.h"

namespace kiln::weights {

namespace fs = std::filesystem;

namespace {

std::string task_of_format(const std::string& format) {
    return format == "diffusers" ? "generate" : "upscale";
}

}  // namespace

DetectedModel load_model_files(const std::string& format, const std::vector<fs::path>& paths) {
    const std::string file = paths.empty() ? std::string() : paths.front().string();
    try {
        if (format == "safetensors") {
            DetectedModel m = detect_architecture(load_safetensors(paths.at(0)));
            apply_arch_metadata(m, load_safetensors_metadata(paths.at(0)));
            return m;
        }
        if (format == "pth")
            return detect_architecture(load_pth(paths.at(0)));
        if (format == "ncnn")
            return import_ncnn(load_ncnn(paths.at(0), paths.at(1)));
    } catch (const core::Error& e) {
        // Detection errors do not know the file; add it once.
        const std::string msg = e.what();
        if (msg.find(file) != std::string::npos)
            throw;
        throw core::Error(e.code(), file + ": " + msg);
    }
    throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "unknown model format '" + format + "'");
}

ModelRegistry::ModelRegistry(fs::path directory) : directory_(std::move(directory)) {}

namespace {

// nullopt when the time cannot be read.
std::optional<fs::file_time_type> mtime_of(const fs::path& path) {
    std::error_code ec;
    const auto t = fs::last_write_time(path, ec);
    return ec ? std::nullopt : std::optional(t);
}

}  // namespace

std::vector<std::optional<fs::file_time_type>> ModelRegistry::listing_stamp() const {
    std::vector<std::optional<fs::file_time_type>> stamp{mtime_of(directory_)};
    for (const fs::path& dir : listing_dirs_)
        stamp.push_back(mtime_of(dir));
    return stamp;
}

std::vector<ModelRegistry::Candidate> ModelRegistry::scan() {
    // The directory and its subfolders (a diffusers folder gets its files after it is created)
    // are listed again when one of their mtimes moved, or when one cannot be read or is within
    // 2 s of now, where a second change could keep the same mtime.
    const auto stamp = listing_stamp();
    const auto now = fs::file_time_type::clock::now();
    const bool unsettled = std::any_of(stamp.begin(), stamp.end(), [&](const auto& t) {
        return !t || now - *t < std::chrono::seconds(2);
    });
    if (listing_stamp_.empty() || stamp != listing_stamp_ || unsettled) {
        listing_dirs_.clear();
        listing_ = scan_directory(listing_dirs_);
        listing_stamp_ = listing_stamp();
    }
    return listing_;
}

std::vector<ModelRegistry::Candidate> ModelRegistry::scan_directory(
    std::vector<fs::path>& subdirectories) const {
    std::vector<Candidate> out;
    std::error_code ec;
    fs::directory_iterator it(directory_, ec);
    if (ec)
        throw core::Error(core::ErrorCode::IO,
                          directory_.string() + ": cannot list model directory: " + ec.message());
    for (const fs::directory_entry& e : it) {
        if (e.is_directory(ec)) {
            subdirectories.push_back(e.path());
            if (is_unet_folder(e.path()))
                out.push_back({e.path().filename().string(), "diffusers", {e.path()}});
            continue;
        }
        if (!e.is_regular_file(ec))
            continue;
        const fs::path& p = e.path();
        const std::string ext = p.extension().string();
        if (ext == ".safetensors") {
            out.push_back({p.stem().string(), "safetensors", {p}});
        } else if (ext == ".pth") {
            out.push_back({p.stem().string(), "pth", {p}});
        } else if (ext == ".param") {
            fs::path bin = p;
            bin.replace_extension(".bin");
            if (fs::is_regular_file(bin, ec))
                out.push_back({p.stem().string(), "ncnn", {p, bin}});
        }
    }
    std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
        return a.name != b.name ? a.name < b.name : a.format < b.format;
    });
    return out;
}

ModelRegistry::CacheKey ModelRegistry::key_of(const Candidate& c) {
    CacheKey k;
    k.paths = c.paths;
    for (const fs::path& p : c.paths) {
        std::error_code ec;
        k.sizes.push_back(fs::file_size(p, ec));
        const auto t = fs::last_write_time(p, ec);
        k.mtimes.push_back(ec ? 0 : static_cast<int64_t>(t.time_since_epoch().count()));
    }
    return k;
}

std::string noise_level_of_name(const std::string& stem) {
    std::string s;
    for (const char ch : stem)
        s += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (s.find("no-denoise") != std::string::npos || s.find("no_denoise") != std::string::npos)
        return "none";
    if (s.find("conservative") != std::string::npos)
        return "conservative";
    // "denoise2x" (Real-CUGAN), "noise2" (waifu2x): the digit after "noise".
    for (size_t at = s.find("noise"); at != std::string::npos; at = s.find("noise", at + 1)) {
        const size_t d = at + 5;
        if (d < s.size() && s[d] >= '0' && s[d] <= '3' &&
            (d + 1 == s.size() || !std::isdigit(static_cast<unsigned char>(s[d + 1]))))
            return std::string(1, s[d]);
    }
    return "";
}

ModelInfo ModelRegistry::describe(const Candidate& c) {
    ModelInfo info;
    info.name = c.name;
    info.paths = c.paths;
    info.format = c.format;
    info.task = task_of_format(c.format);
    try {
        if (c.format == "diffusers") {
            const UNetFiles unet = load_unet(c.paths.at(0));
            info.arch_name = "UNet2DConditionModel";
            int64_t by_dtype[3] = {0, 0, 0};
            for (const auto& [k, t] : unet.weights) {
                info.param_count += t.numel();
                by_dtype[static_cast<int>(t.stored_as)] += t.numel();
            }
            const auto most = std::max_element(by_dtype, by_dtype + 3) - by_dtype;
            info.stored_dtype = storage_dtype_name(static_cast<StorageDType>(most));
            return info;
        }
        const DetectedModel m = load_model_files(c.format, c.paths);
        info.arch_name = m.arch_name;
        info.family = model_family(m.config);
        if (info.family != "Real-ESRGAN")
            info.noise = noise_level_of_name(c.name);
        info.scale = m.scale;
        int64_t by_dtype[3] = {0, 0, 0};
        for (const auto& [k, t] : m.weights) {
            info.param_count += t.numel();
            by_dtype[static_cast<int>(t.stored_as)] += t.numel();
        }
        const auto most = std::max_element(by_dtype, by_dtype + 3) - by_dtype;
        info.stored_dtype = storage_dtype_name(static_cast<StorageDType>(most));
    } catch (const core::Error& e) {
        info.error = std::string(core::error_code_name(e.code())) + ": " + e.what();
    }
    return info;
}

std::vector<ModelInfo> ModelRegistry::list() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<ModelInfo> out;
    std::map<CacheKey, ModelInfo> fresh;
    for (const Candidate& c : scan()) {
        CacheKey key = key_of(c);
        auto it = cache_.find(key);
        ModelInfo info = it != cache_.end() ? it->second : describe(c);
        fresh.emplace(std::move(key), info);
        out.push_back(std::move(info));
    }
    cache_ = std::move(fresh);  // drop entries for files that changed or went away
    return out;
}

ModelRegistry::Candidate ModelRegistry::find(const std::string& name) {
    std::vector<Candidate> candidates;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        candidates = scan();
    }
    std::string names;
    for (const Candidate& c : candidates) {
        if (c.name == name)
            return c;
        names += (names.empty() ? "" : ", ") + c.name;
    }
    throw core::Error(core::ErrorCode::NOT_FOUND,
                      "model '" + name + "' not found in " + directory_.string() +
                          " (available: " + (names.empty() ? "none" : names) + ")");
}

ModelFiles ModelRegistry::locate(const std::string& name) {
    Candidate c = find(name);
    return ModelFiles{std::move(c.name), c.format, task_of_format(c.format), std::move(c.paths)};
}

DetectedModel ModelRegistry::load(const std::string& name) {
    const Candidate c = find(name);
    if (c.format == "diffusers") {
        throw core::Error(
            core::ErrorCode::UNSUPPORTED,
            "model '" + name + "' generates images (use kiln generate); it does not upscale");
    }
    return load_model_files(c.format, c.paths);
}

fs::path ModelRegistry::generation_model_dir(const std::string& name) {
    const Candidate c = find(name);
    if (c.format != "diffusers") {
        throw core::Error(
            core::ErrorCode::UNSUPPORTED,
            "model '" + name + "' upscales images (use kiln upscale); it does not generate");
    }
    return c.paths.at(0);
}

}  // namespace kiln::weights
