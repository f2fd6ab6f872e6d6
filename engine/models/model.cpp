#include "engine/models/model.h"

#include <algorithm>

#include "core/error.h"
#include "engine/models/omnisr.h"
#include "engine/models/rrdbnet.h"
#include "engine/models/srvgg.h"
#include "engine/models/unet_gan.h"

namespace kiln::engine {

Model::Model(std::string arch, int scale, weights::StateDict weights)
    : arch_(std::move(arch)), scale_(scale) {
    for (auto& [name, t] : weights) {
        tensors_[name] = {t.shape, std::make_shared<const std::vector<float>>(std::move(t.data))};
    }
}

std::unique_ptr<Model> Model::create(weights::DetectedModel detected) {
    if (auto* srvgg = std::get_if<weights::SRVGGNetCompactConfig>(&detected.config)) {
        // ncnn's animevideov3-x2/x3 are the x4 network followed by a bicubic downscale.
        return std::make_unique<SRVGGNetCompact>(*srvgg, detected.scale,
                                                 std::move(detected.weights));
    }
    if (detected.output_resize != 1.0f) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          detected.arch_name + " with an output resize of " +
                              std::to_string(detected.output_resize) + " is not implemented");
    }
    if (auto* rrdb = std::get_if<weights::RRDBNetConfig>(&detected.config)) {
        return std::make_unique<RRDBNet>(*rrdb, std::move(detected.weights));
    }
    if (auto* upconv7 = std::get_if<weights::UpConv7Config>(&detected.config)) {
        return std::make_unique<UpConv7>(*upconv7, std::move(detected.weights));
    }
    if (auto* cunet = std::get_if<weights::CUNetConfig>(&detected.config)) {
        return std::make_unique<CUNet>(*cunet, std::move(detected.weights));
    }
    if (auto* omnisr = std::get_if<weights::OmniSRConfig>(&detected.config)) {
        return std::make_unique<OmniSR>(*omnisr, std::move(detected.weights));
    }
    throw core::Error(core::ErrorCode::UNSUPPORTED,
                      "no engine model for architecture " + detected.arch_name);
}

int64_t Model::parameter_count() const {
    int64_t n = 0;
    for (const auto& [name, t] : tensors_)
        n += static_cast<int64_t>(t.data->size());
    return n;
}

int Model::window_for(int size) const {
    const int m = size_multiple();
    const int v = std::max(size, min_window());
    return (v + m - 1) / m * m;
}

namespace {

void check_window(const Model& m, int h, int w) {
    if (h <= 0 || w <= 0 || h % m.size_multiple() != 0 || w % m.size_multiple() != 0 ||
        h < m.min_window() || w < m.min_window()) {
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT,
                          m.arch() + ": input " + std::to_string(w) + "x" + std::to_string(h) +
                              " must be multiples of " + std::to_string(m.size_multiple()) +
                              ", at least " + std::to_string(std::max(1, m.min_window())));
    }
}

}  // namespace

Graph Model::build_graph(int h, int w) const {
    check_window(*this, h, w);
    Graph g;
    const ValueId x = g.input(h + 2 * border(), w + 2 * border(), in_channels());
    g.output(build(g, x));
    return g;
}

Graph Model::build_graph(int h, int w, const SharedMeans& means) const {
    check_window(*this, h, w);
    const int blocks = shared_se_blocks();
    if (means.fed < 0 || means.fed > blocks || means.probe >= blocks ||
        (means.probe >= 0 && means.probe < means.fed)) {
        throw core::Error(core::ErrorCode::INTERNAL, arch_ + ": shared means fed " +
                                                         std::to_string(means.fed) + ", probe " +
                                                         std::to_string(means.probe) + " of " +
                                                         std::to_string(blocks) + " blocks");
    }
    Graph g;
    const ValueId x = g.input(h + 2 * border(), w + 2 * border(), in_channels());
    SeMeans se(means);
    const ValueId y = build_sharing_means(g, x, se);
    if (se.blocks() != blocks)
        throw core::Error(core::ErrorCode::INTERNAL, arch_ + ": SE block count");
    if (means.probe < 0) {
        g.output(y);
    } else {
        g.output(se.probed(g));
        g.drop_ops_not_reaching_output();
    }
    return g;
}

ValueId Model::build_sharing_means(Graph&, ValueId, SeMeans&) const {
    throw core::Error(core::ErrorCode::INTERNAL, arch_ + ": no shared means");
}

ValueId SeMeans::next(Graph& g, ValueId x) {
    const int block = block_++;
    const ValueId mean = block < spec_.fed ? g.input(1, 1, g.value(x).c) : g.global_avg_pool(x);
    if (spec_.probe >= 0 && block >= spec_.fed && block <= spec_.probe)
        probed_.push_back(mean);
    return mean;
}

ValueId SeMeans::probed(Graph& g) const {
    if (probed_.empty())
        throw core::Error(core::ErrorCode::INTERNAL, "SeMeans: nothing probed");
    ValueId out = probed_.front();
    for (size_t i = 1; i < probed_.size(); ++i)
        out = g.concat(out, probed_[i]);
    return out;
}

std::shared_ptr<const std::vector<float>> Model::tensor(const std::string& key,
                                                        std::vector<int64_t>* shape) const {
    auto it = tensors_.find(key);
    if (it == tensors_.end()) {
        throw core::Error(core::ErrorCode::BAD_FILE, arch_ + ": weights lack tensor '" + key + "'");
    }
    if (shape)
        *shape = it->second.shape;
    return it->second.data;
}

ConvWeights Model::conv(const std::string& prefix) const {
    ConvWeights c;
    std::vector<int64_t> shape;
    c.weight = tensor(prefix + ".weight", &shape);
    if (shape.size() != 4 || shape[2] != shape[3]) {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          arch_ + ": '" + prefix + ".weight' is not a square conv");
    }
    c.out_channels = static_cast<int>(shape[0]);
    c.in_channels = static_cast<int>(shape[1]);
    c.kernel = static_cast<int>(shape[2]);
    if (tensors_.count(prefix + ".bias"))
        c.bias = tensor(prefix + ".bias", nullptr);
    return c;
}

std::vector<float> Model::values(const std::string& key) const {
    return *tensor(key, nullptr);
}

}  // namespace kiln::engine
