#include "engine/diffusion/prompt_encoder.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_depth.h"
#include "weights/safetensors.h"

namespace kiln::engine::diffusion {

namespace {

std::string normalise(const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
    std::string out = s.substr(b, e - b);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

ClassTableEncoder::ClassTableEncoder(const std::filesystem::path& file) {
    const std::string origin = file.string();
    auto weights = weights::load_safetensors(file);
    const auto meta = weights::load_safetensors_metadata(file);
    const auto it = weights.find("class_embeddings");
    if (it == weights.end() || it->second.shape.size() != 3)
        throw core::Error(core::ErrorCode::BAD_FILE, origin +
                                                         ": needs a [classes, tokens, width] "
                                                         "tensor 'class_embeddings'");
    const auto& shape = it->second.shape;
    const auto names = meta.find("class_names");
    const auto empty = meta.find("empty_index");
    if (names == meta.end() || empty == meta.end())
        throw core::Error(core::ErrorCode::BAD_FILE,
                          origin + ": metadata needs 'class_names' and 'empty_index'");
    if (core::json_nesting_depth(names->second, core::max_json_depth) > core::max_json_depth)
        throw core::Error(core::ErrorCode::BAD_FILE, origin + ": 'class_names' nests too deeply");
    try {
        const auto list = nlohmann::json::parse(names->second);
        for (const auto& n : list)
            names_.push_back(normalise(n.get<std::string>()));
        empty_ = std::stoi(empty->second);
    } catch (const std::exception& e) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          origin + ": bad class metadata (" + e.what() + ")");
    }
    if (static_cast<int64_t>(names_.size()) != shape[0] || empty_ < 0 ||
        empty_ >= static_cast<int>(shape[0])) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          origin + ": class_names and empty_index do not match the table");
    }
    tokens_ = static_cast<int>(shape[1]);
    width_ = static_cast<int>(shape[2]);
    table_ = std::move(it->second.data);
}

std::vector<float> ClassTableEncoder::encode(const std::string& prompt) const {
    const std::string p = normalise(prompt);
    int row = -1;
    if (p.empty()) {
        row = empty_;
    } else {
        for (size_t i = 0; i < names_.size(); ++i) {
            if (static_cast<int>(i) != empty_ && names_[i] == p)
                row = static_cast<int>(i);
        }
    }
    if (row < 0) {
        std::string known;
        for (const std::string& n : vocabulary())
            known += (known.empty() ? "" : ", ") + ("'" + n + "'");
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          "this model knows only the prompts " + known + " (or an empty prompt)");
    }
    const size_t size = static_cast<size_t>(tokens_) * static_cast<size_t>(width_);
    const auto begin =
        table_.begin() + static_cast<std::ptrdiff_t>(size * static_cast<size_t>(row));
    return std::vector<float>(begin, begin + static_cast<std::ptrdiff_t>(size));
}

std::vector<std::string> ClassTableEncoder::vocabulary() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < names_.size(); ++i) {
        if (static_cast<int>(i) != empty_)
            out.push_back(names_[i]);
    }
    return out;
}

}  // namespace kiln::engine::diffusion
