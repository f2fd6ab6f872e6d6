#include "weights/ncnn_import.h"

#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "weights/unet_gan_layers.h"

namespace kiln::weights {

namespace {

using Act = SRVGGNetCompactConfig::Act;

const std::set<std::string> kRrdbTypes{"Input",   "Split",    "Convolution", "Concat",
                                       "Eltwise", "BinaryOp", "Interp"};
const std::set<std::string> kSrvggTypes{"Input", "Split",  "Convolution", "PReLU",
                                        "ReLU",  "Interp", "BinaryOp",    "PixelShuffle"};
const std::set<std::string> kUnetGanTypes{"Input",   "Split", "Convolution",  "Deconvolution",
                                          "Pooling", "Scale", "InnerProduct", "BinaryOp",
                                          "Eltwise", "Crop",  "PixelShuffle"};

[[noreturn]] void unsupported(const std::string& what) {
    throw core::Error(core::ErrorCode::UNSUPPORTED, "ncnn graph: " + what);
}

bool near(float a, float b) {
    return std::fabs(a - b) < 1e-5f;
}

class GraphView {
  public:
    explicit GraphView(const NcnnGraph& g) : g_(g) {
        for (size_t i = 0; i < g.layers.size(); ++i) {
            for (const std::string& b : g.layers[i].outputs)
                producer_[b] = i;
            ++counts_[g.layers[i].type];
            if (g.layers[i].type == "Convolution")
                convs_.push_back(i);
        }
    }

    // The layer producing `blob`, looking through Split layers (bounded: names may repeat).
    const NcnnLayer* source(const std::string& blob) const {
        const std::string* b = &blob;
        for (int hops = 0; hops < 64; ++hops) {
            auto it = producer_.find(*b);
            if (it == producer_.end())
                return nullptr;
            const NcnnLayer& l = g_.layers[it->second];
            if (l.type != "Split" || l.inputs.size() != 1)
                return &l;
            b = &l.inputs[0];
        }
        return nullptr;
    }
    const NcnnLayer* source_of(const NcnnLayer& l) const {
        if (l.inputs.empty())
            unsupported("layer '" + l.name + "' has no input");
        return source(l.inputs[0]);
    }
    int count(const std::string& type) const {
        auto it = counts_.find(type);
        return it == counts_.end() ? 0 : it->second;
    }
    std::vector<const NcnnLayer*> of_type(const std::string& type) const {
        std::vector<const NcnnLayer*> out;
        for (const NcnnLayer& l : g_.layers) {
            if (l.type == type)
                out.push_back(&l);
        }
        return out;
    }
    const NcnnLayer& conv(size_t i) const { return g_.layers[convs_[i]]; }
    size_t conv_count() const { return convs_.size(); }
    std::string counts_text() const {
        std::string s;
        for (const auto& [type, n] : counts_)
            s += (s.empty() ? "" : ", ") + type + " x" + std::to_string(n);
        return s;
    }
    bool only(const std::set<std::string>& types) const {
        for (const auto& [type, n] : counts_) {
            if (!types.count(type))
                return false;
        }
        return true;
    }

  private:
    const NcnnGraph& g_;
    std::map<std::string, size_t> producer_;
    std::map<std::string, int> counts_;
    std::vector<size_t> convs_;
};

// A 3x3, stride 1, pad 1 convolution with bias; `act` is the fused activation expected:
// 0 none, 2 LeakyReLU(0.2), -1 not checked here.
void check_conv(const NcnnLayer& l, int act) {
    const bool plain = l.param_int(1, 0) == 3 && l.param_int(11, 3) == 3 &&
                       l.param_int(2, 1) == 1 && l.param_int(12, 1) == 1 &&
                       l.param_int(3, 1) == 1 && l.param_int(13, 1) == 1 &&
                       l.param_int(4, 0) == 1 && l.param_int(14, 1) == 1;
    if (!plain)
        unsupported("convolution '" + l.name + "' is not 3x3/stride 1/pad 1");
    if (!l.weights.count("bias"))
        unsupported("convolution '" + l.name + "' has no bias");
    if (act < 0)
        return;
    const int got = l.param_int(9, 0);
    const auto slope = l.param_array(10);
    if (got != act || (act == 2 && (slope.size() != 1 || !near(slope[0], 0.2f)))) {
        unsupported("convolution '" + l.name + "' has activation " + std::to_string(got) +
                    (act == 2 ? " (expected LeakyReLU 0.2)" : " (expected none)"));
    }
}

void put_conv(StateDict& sd, const NcnnLayer& l, const std::string& name) {
    sd[name + ".weight"] = l.weights.at("weight");
    sd[name + ".bias"] = l.weights.at("bias");
}

DetectedModel import_rrdbnet(const GraphView& v) {
    const auto interps = v.of_type("Interp");
    const size_t ups = interps.size();
    const size_t n = v.conv_count();
    if (n < 4 + ups + 15 || (n - 4 - ups) % 15 != 0) {
        unsupported("RRDBNet graph with " + std::to_string(n) +
                    " convolutions does not fit 1 + 15 * blocks + 1 + " + std::to_string(ups) +
                    " + 2");
    }
    const size_t nb = (n - 4 - ups) / 15;
    if (v.count("Eltwise") != static_cast<int>(4 * nb) ||
        v.count("Concat") != static_cast<int>(12 * nb) || v.count("BinaryOp") != 1) {
        unsupported("RRDBNet graph: Eltwise/Concat/BinaryOp counts do not match " +
                    std::to_string(nb) + " blocks");
    }
    for (const NcnnLayer* e : v.of_type("Eltwise")) {
        const auto coeffs = e->param_array(1);
        if (e->param_int(0, 1) != 1 || coeffs.size() != 2 || !near(coeffs[0], 0.2f) ||
            !near(coeffs[1], 1.0f)) {
            unsupported("Eltwise '" + e->name +
                        "' is not 0.2 * branch + identity (residual scaling differs)");
        }
    }
    for (const NcnnLayer* i : interps) {
        if (i->param_int(0, 0) != 1 || !near(i->param_float(1, 0), 2) ||
            !near(i->param_float(2, 0), 2)) {
            unsupported("Interp '" + i->name + "' is not nearest x2");
        }
    }
    const NcnnLayer* add = v.of_type("BinaryOp")[0];
    if (add->param_int(0, 0) != 0 || add->param_int(1, 0) != 0 || add->inputs.size() != 2) {
        unsupported("BinaryOp '" + add->name + "' is not the body's residual add");
    }
    StateDict sd;
    check_conv(v.conv(0), 0);
    put_conv(sd, v.conv(0), "conv_first");
    for (size_t b = 0; b < nb; ++b) {
        for (size_t r = 0; r < 3; ++r) {
            for (size_t j = 0; j < 5; ++j) {
                const NcnnLayer& c = v.conv(1 + 15 * b + 5 * r + j);
                check_conv(c, j < 4 ? 2 : 0);
                put_conv(sd, c,
                         "body." + std::to_string(b) + ".rdb" + std::to_string(r + 1) + ".conv" +
                             std::to_string(j + 1));
            }
        }
    }
    size_t k = 1 + 15 * nb;
    check_conv(v.conv(k), 0);
    put_conv(sd, v.conv(k++), "conv_body");
    for (size_t u = 1; u <= ups; ++u, ++k) {
        const NcnnLayer* src = v.source_of(v.conv(k));
        if (src == nullptr || src->type != "Interp")
            unsupported("conv_up" + std::to_string(u) + " is not fed by an Interp");
        check_conv(v.conv(k), 2);
        put_conv(sd, v.conv(k), "conv_up" + std::to_string(u));
    }
    check_conv(v.conv(k), 2);
    put_conv(sd, v.conv(k++), "conv_hr");
    check_conv(v.conv(k), 0);
    put_conv(sd, v.conv(k), "conv_last");
    DetectedModel m = detect_architecture(std::move(sd));
    if (m.arch_name != "RRDBNet")
        unsupported("RRDBNet graph detected as " + m.arch_name);
    return m;
}

DetectedModel import_srvgg(const GraphView& v) {
    const size_t n = v.conv_count();
    const auto shuffles = v.of_type("PixelShuffle");
    if (n < 2 || shuffles.size() != 1 || v.count("BinaryOp") != 1) {
        unsupported(
            "SRVGGNetCompact graph needs >= 2 convolutions, one PixelShuffle and one BinaryOp");
    }
    const int r = shuffles[0]->param_int(0, 1);
    const NcnnLayer* shuffle_src = v.source_of(*shuffles[0]);
    if (shuffle_src != &v.conv(n - 1))
        unsupported("PixelShuffle is not fed by the last convolution");

    // Activation of each body conv: a PReLU/ReLU layer reading its output, or fused in the conv.
    std::map<std::string, const NcnnLayer*> act_of;
    for (const char* type : {"PReLU", "ReLU"}) {
        for (const NcnnLayer* a : v.of_type(type)) {
            const NcnnLayer* src = v.source_of(*a);
            if (src == nullptr || src->type != "Convolution")
                unsupported(std::string(type) + " '" + a->name + "' does not follow a convolution");
            act_of[src->name] = a;
        }
    }
    StateDict sd;
    std::set<Act> acts;
    for (size_t k = 0; k < n; ++k) {
        const NcnnLayer& c = v.conv(k);
        const bool last = k + 1 == n;
        const auto it = act_of.find(c.name);
        const int fused = c.param_int(9, 0);
        check_conv(c, -1);
        put_conv(sd, c, "body." + std::to_string(2 * k));
        if (last) {
            if (it != act_of.end() || fused != 0)
                unsupported("the last convolution has an activation");
            break;
        }
        if (it == act_of.end() && fused == 0)
            unsupported("convolution '" + c.name + "' has no activation");
        if (it != act_of.end() && it->second->type == "PReLU") {
            acts.insert(Act::PRELU);
            sd["body." + std::to_string(2 * k + 1) + ".weight"] = it->second->weights.at("slope");
        } else {
            const auto fused_slope = c.param_array(10);
            if (fused == 2 && fused_slope.size() != 1)
                unsupported("'" + c.name + "' has no LeakyReLU slope");
            if (fused > 2)
                unsupported("'" + c.name + "' has fused activation " + std::to_string(fused));
            const float slope = it != act_of.end() ? it->second->param_float(0, 0)
                                : fused == 2       ? fused_slope[0]
                                                   : 0.0f;
            if (near(slope, 0)) {
                acts.insert(Act::RELU);
            } else if (near(slope, 0.1f)) {
                acts.insert(Act::LEAKY_RELU);
            } else {
                unsupported("activation slope " + std::to_string(slope) +
                            " (SRVGGNetCompact uses 0 or 0.1)");
            }
        }
    }
    if (acts.size() != 1)
        unsupported("mixed activations");

    // Nearest-upsampled input added to the shuffled output, then an optional bicubic resize.
    float resize = 1.0f;
    bool base_seen = false;
    for (const NcnnLayer* i : v.of_type("Interp")) {
        const float sh = i->param_float(1, 0);
        const float sw = i->param_float(2, 0);
        const NcnnLayer* src = v.source_of(*i);
        if (i->param_int(0, 0) == 1 && src != nullptr && src->type == "Input" && near(sh, r) &&
            near(sw, r)) {
            base_seen = true;
        } else if (i->param_int(0, 0) == 3 && src != nullptr && src->type == "BinaryOp" &&
                   near(sh, sw) && sh > 0) {
            resize = sh;
        } else {
            unsupported("Interp '" + i->name + "' is neither the nearest x" + std::to_string(r) +
                        " input upsample nor a final bicubic resize");
        }
    }
    const NcnnLayer* add = v.of_type("BinaryOp")[0];
    if (!base_seen || add->param_int(0, 0) != 0 || add->param_int(1, 0) != 0) {
        unsupported("SRVGGNetCompact graph lacks the nearest-upsampled input residual");
    }
    DetectedModel m = detect_architecture(std::move(sd));
    auto* c = std::get_if<SRVGGNetCompactConfig>(&m.config);
    if (c == nullptr || c->upscale != r)
        unsupported("PixelShuffle factor disagrees with the last convolution");
    c->act = *acts.begin();
    const float overall = static_cast<float>(r) * resize;
    if (std::fabs(overall - std::round(overall)) > 1e-4f || std::round(overall) < 1) {
        unsupported("final resize gives a non-integer scale " + std::to_string(overall));
    }
    m.scale = static_cast<int>(std::round(overall));
    m.output_resize = resize;
    return m;
}

// ncnn's fused activation (param 9) for a table layer's.
int ncnn_activation(GanLayer::Act act) {
    switch (act) {
        case GanLayer::Act::NONE:
            return 0;
        case GanLayer::Act::RELU:
            return 1;
        case GanLayer::Act::LEAKY_RELU:
            return 2;
        case GanLayer::Act::SIGMOID:
            return 4;
    }
    return -1;
}

// One weighted ncnn layer against its table row: type, geometry, activation, weight shapes.
void match_layer(const NcnnLayer& l, const GanLayer& want, StateDict& sd) {
    const char* type = want.kind == GanLayer::Kind::CONV     ? "Convolution"
                       : want.kind == GanLayer::Kind::DECONV ? "Deconvolution"
                                                             : "InnerProduct";
    const std::string where = "layer '" + l.name + "' (" + want.key + ")";
    if (l.type != type)
        unsupported(where + " is " + l.type + ", expected " + type);
    if (want.kind != GanLayer::Kind::LINEAR) {
        const int k = l.param_int(1, 0);
        const int s = l.param_int(3, 1);
        const int p = l.param_int(4, 0);
        const bool square = l.param_int(11, k) == k && l.param_int(13, s) == s &&
                            l.param_int(14, p) == p && l.param_int(15, p) == p &&
                            l.param_int(16, p) == p && l.param_int(2, 1) == 1 &&
                            l.param_int(12, 1) == 1;
        if (!square || k != want.kernel || s != want.stride || p != want.pad) {
            unsupported(where + " is not " + std::to_string(want.kernel) + "x" +
                        std::to_string(want.kernel) + " stride " + std::to_string(want.stride) +
                        " pad " + std::to_string(want.pad));
        }
    }
    const int act = l.param_int(9, 0);
    const auto slope = l.param_array(10);
    const bool slope_ok = act != 2 || (slope.size() == 1 && near(slope[0], 0.1f));
    if (act != ncnn_activation(want.act) || !slope_ok)
        unsupported(where + " has activation " + std::to_string(act) + ", expected " +
                    std::to_string(ncnn_activation(want.act)));
    if (!l.weights.count("bias"))
        unsupported(where + " has no bias");
    WeightTensor w = l.weights.at("weight");
    if (want.kind == GanLayer::Kind::LINEAR && w.shape.size() == 2)
        w.shape = {w.shape[0], w.shape[1], 1, 1};
    if (w.shape != want.weight_shape())
        unsupported(where + " has weights " + std::to_string(w.data.size()) +
                    " values, not the expected shape");
    sd[want.key + ".weight"] = std::move(w);
    sd[want.key + ".bias"] = l.weights.at("bias");
}

// waifu2x UpConv7, waifu2x CUNet and Real-CUGAN's UpCunet2x: the weighted layers, in file
// order, must be the family's table row by row; the weightless layers between them (split,
// pooling, channel scale, crop, add) are what the table's topology implies, counted.
DetectedModel import_unet_gan(const NcnnGraph& graph, const GraphView& v) {
    std::vector<const NcnnLayer*> weighted;
    for (const NcnnLayer& l : graph.layers) {
        if (l.type == "Convolution" || l.type == "Deconvolution" || l.type == "InnerProduct")
            weighted.push_back(&l);
    }
    std::vector<GanLayer> table;
    DetectedModel m;
    if (v.count("Pooling") == 0) {
        UpConv7Config c;
        table = upconv7_layers(c);
        m.config = c;
        m.arch_name = "UpConv7";
        m.scale = 2;
    } else {
        CUNetConfig c;
        // unet1's bottom, the tenth weighted layer: transposed 4x4 (2x) or 5x5 (3x), or not (1x).
        const bool transposed = weighted.size() > 9 && weighted[9]->type == "Deconvolution";
        c.scale = !transposed                         ? 1
                  : weighted[9]->param_int(1, 0) == 5 ? 3
                  : v.count("PixelShuffle") > 0       ? 4
                                                      : 2;
        if (c.scale == 4) {
            const auto shuffles = v.of_type("PixelShuffle");
            if (shuffles.size() != 1 || shuffles[0]->param_int(0, 1) != 2)
                unsupported("Real-CUGAN 4x graph: expected one PixelShuffle by 2");
        }
        c.program = v.count("Eltwise") > 0 ? CUNetConfig::Program::WAIFU2X
                                           : CUNetConfig::Program::REAL_CUGAN;
        table = cunet_layers(c);
        m.config = c;
        m.arch_name = "CUNet";
        m.scale = c.scale;
        int se = 0;
        for (const GanLayer& l : table)
            se += l.kind == GanLayer::Kind::LINEAR ? 1 : 0;
        if (v.count("Pooling") * 2 != se)
            unsupported("CUNet graph with " + std::to_string(v.count("Pooling")) +
                        " poolings; its convolutions imply " + std::to_string(se / 2));
        for (const NcnnLayer* p : v.of_type("Pooling")) {
            if (p->param_int(0, 0) != 1 || p->param_int(4, 0) != 1)
                unsupported("Pooling '" + p->name + "' is not a global average");
        }
    }
    if (weighted.size() != table.size()) {
        unsupported(m.arch_name + " graph with " + std::to_string(weighted.size()) +
                    " weighted layers, expected " + std::to_string(table.size()));
    }
    for (size_t i = 0; i < table.size(); ++i)
        match_layer(*weighted[i], table[i], m.weights);
    return m;
}

}  // namespace

DetectedModel import_ncnn(const NcnnGraph& graph) {
    const GraphView v(graph);
    if (v.count("Input") == 1 && v.count("PixelShuffle") == 1 && v.only(kSrvggTypes))
        return import_srvgg(v);
    if (v.count("Input") == 1 && v.count("Eltwise") > 0 && v.only(kRrdbTypes))
        return import_rrdbnet(v);
    if (v.count("Input") == 1 && v.count("Deconvolution") > 0 && v.only(kUnetGanTypes))
        return import_unet_gan(graph, v);
    unsupported("not a recognised architecture; layers: " + v.counts_text());
}

}  // namespace kiln::weights
