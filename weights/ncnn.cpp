#include "weights/ncnn.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>

#include "core/error.h"
#include "weights/mapped_file.h"

namespace kiln::weights {

namespace {

constexpr int kMagic = 7767517;
constexpr int kMaxLayers = 1 << 20;
constexpr int kMaxLayerIo = 4096;
constexpr int kMaxParamId = 32;  // ncnn's NCNN_MAX_PARAM_COUNT
constexpr int kArrayKeyBase = -23300;
constexpr size_t kMaxParamFile = 64u << 20;

class ParamParser {
  public:
    ParamParser(std::string_view text, const std::string& file) : text_(text), file_(file) {}

    NcnnGraph parse();

  private:
    [[noreturn]] void bad(const std::string& what) const {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          file_ + ": line " + std::to_string(line_no_) + ": " + what);
    }
    bool next_line(std::vector<std::string_view>& tokens);
    int parse_int(std::string_view s, const char* what) const {
        int v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || p != s.data() + s.size())
            bad(std::string(what) + " '" + std::string(s) + "' is not an integer");
        return v;
    }
    float parse_number(std::string_view s, bool& is_float) const;
    NcnnParam parse_value(std::string_view s, bool array) const;

    std::string_view text_;
    const std::string& file_;
    size_t pos_ = 0;
    int line_no_ = 0;
};

bool ParamParser::next_line(std::vector<std::string_view>& tokens) {
    tokens.clear();
    while (pos_ < text_.size() && tokens.empty()) {
        const size_t end = std::min(text_.find('\n', pos_), text_.size());
        std::string_view line = text_.substr(pos_, end - pos_);
        pos_ = end + 1;
        ++line_no_;
        size_t i = 0;
        while (i < line.size()) {
            while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])))
                ++i;
            size_t j = i;
            while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j])))
                ++j;
            if (j > i)
                tokens.push_back(line.substr(i, j - i));
            i = j;
        }
    }
    return !tokens.empty();
}

float ParamParser::parse_number(std::string_view s, bool& is_float) const {
    is_float = s.find_first_of(".eE") != std::string_view::npos;
    if (!is_float)
        return static_cast<float>(parse_int(s, "value"));
    float v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size())
        bad("value '" + std::string(s) + "' is not a number");
    return v;
}

NcnnParam ParamParser::parse_value(std::string_view s, bool array) const {
    NcnnParam p;
    if (!array) {
        const float v = parse_number(s, p.is_float);
        p.f = v;
        // A float written where an int is read truncates, as in ncnn; out-of-range becomes 0.
        const bool fits = std::fabs(v) < 2147483520.0f;
        p.i = !p.is_float ? parse_int(s, "value") : fits ? static_cast<int32_t>(v) : 0;
        return p;
    }
    // "n,v1,...,vn"
    p.is_array = true;
    const size_t comma = s.find(',');
    const int n = parse_int(s.substr(0, comma), "array length");
    std::string_view rest =
        comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    while (!rest.empty()) {
        const size_t c = rest.find(',');
        bool is_float = false;
        p.array.push_back(parse_number(rest.substr(0, c), is_float));
        p.is_float = p.is_float || is_float;
        rest = c == std::string_view::npos ? std::string_view() : rest.substr(c + 1);
    }
    if (n < 0 || static_cast<size_t>(n) != p.array.size()) {
        bad("array declares " + std::to_string(n) + " values but holds " +
            std::to_string(p.array.size()));
    }
    return p;
}

NcnnGraph ParamParser::parse() {
    std::vector<std::string_view> t;
    if (!next_line(t) || t.size() != 1 || t[0] != std::to_string(kMagic)) {
        bad("not an ncnn .param file (magic 7767517 missing)");
    }
    if (!next_line(t) || t.size() != 2)
        bad("expected '<layer count> <blob count>'");
    const int layer_count = parse_int(t[0], "layer count");
    NcnnGraph g;
    g.blob_count = parse_int(t[1], "blob count");
    if (layer_count < 0 || layer_count > kMaxLayers || g.blob_count < 0 ||
        g.blob_count > kMaxLayers) {
        bad("implausible layer/blob counts");
    }
    std::set<std::string, std::less<>> blobs;
    for (int l = 0; l < layer_count; ++l) {
        if (!next_line(t))
            bad("file ends after " + std::to_string(l) + " of " + std::to_string(layer_count) +
                " layers");
        if (t.size() < 4)
            bad("layer line needs: type name inputs outputs");
        NcnnLayer layer;
        layer.type = t[0];
        layer.name = t[1];
        const int nin = parse_int(t[2], "input count");
        const int nout = parse_int(t[3], "output count");
        if (nin < 0 || nout < 0 || nin > kMaxLayerIo || nout > kMaxLayerIo ||
            t.size() < 4 + static_cast<size_t>(nin + nout)) {
            bad("layer '" + layer.name + "' lists fewer blobs than its counts");
        }
        for (int k = 0; k < nin; ++k) {
            const std::string_view b = t[4 + static_cast<size_t>(k)];
            if (!blobs.contains(b))
                bad("layer '" + layer.name + "' reads blob '" + std::string(b) +
                    "' before it is produced");
            layer.inputs.emplace_back(b);
        }
        for (int k = 0; k < nout; ++k) {
            const std::string_view b = t[4 + static_cast<size_t>(nin + k)];
            blobs.emplace(b);
            layer.outputs.emplace_back(b);
        }
        if (blobs.size() > static_cast<size_t>(g.blob_count))
            bad("more blobs than the declared " + std::to_string(g.blob_count));
        for (size_t k = 4 + static_cast<size_t>(nin + nout); k < t.size(); ++k) {
            const size_t eq = t[k].find('=');
            if (eq == std::string_view::npos)
                bad("layer '" + layer.name + "': '" + std::string(t[k]) + "' is not key=value");
            int key = parse_int(t[k].substr(0, eq), "param key");
            const bool array = key <= kArrayKeyBase;
            if (array)
                key = kArrayKeyBase - key;
            if (key < 0 || key >= kMaxParamId)
                bad("layer '" + layer.name + "': param id " + std::to_string(key) +
                    " out of range");
            layer.params[key] = parse_value(t[k].substr(eq + 1), array);
        }
        g.layers.push_back(std::move(layer));
    }
    std::vector<std::string_view> extra;
    if (next_line(extra))
        bad("text after the last declared layer");
    return g;
}

}  // namespace

int NcnnLayer::param_int(int id, int fallback) const {
    auto it = params.find(id);
    return it == params.end() || it->second.is_array ? fallback : it->second.i;
}

float NcnnLayer::param_float(int id, float fallback) const {
    auto it = params.find(id);
    return it == params.end() || it->second.is_array ? fallback : it->second.f;
}

std::vector<float> NcnnLayer::param_array(int id) const {
    auto it = params.find(id);
    return it == params.end() || !it->second.is_array ? std::vector<float>{} : it->second.array;
}

NcnnGraph parse_ncnn_param(std::string_view text, const std::string& file) {
    return ParamParser(text, file).parse();
}

NcnnGraph load_ncnn(const std::filesystem::path& param_path,
                    const std::filesystem::path& bin_path) {
    const MappedFile param(param_path);
    if (param.size() > kMaxParamFile) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          param_path.string() + ": .param file larger than 64 MiB");
    }
    const auto text = param.bytes();
    NcnnGraph g =
        parse_ncnn_param(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()),
                         param_path.string());
    const MappedFile bin(bin_path);
    read_ncnn_weights(g, bin.bytes(), bin_path.string());
    return g;
}

}  // namespace kiln::weights
