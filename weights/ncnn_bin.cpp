// The .bin half of the ncnn reader: walks the layers in order and reads each one's weights.
#include <array>
#include <string_view>

#include "core/error.h"
#include "weights/byte_io.h"
#include "weights/ncnn.h"

namespace kiln::weights {

namespace {

constexpr uint32_t kTagF16 = 0x01306B47;
constexpr uint32_t kTagInt8 = 0x000D4B38;
constexpr uint32_t kTagF32Raw = 0x0002C056;
constexpr int64_t kMaxElements = int64_t{1} << 40;

// Layers that carry no weights in the .bin.
constexpr std::array<std::string_view, 40> kWeightless{
    "AbsVal",     "BinaryOp",
    "Cast",       "Clip",
    "Concat",     "Crop",
    "Dropout",    "ELU",
    "Eltwise",    "Exp",
    "ExpandDims", "Flatten",
    "GELU",       "HardSigmoid",
    "HardSwish",  "Input",
    "Interp",     "Log",
    "Mish",       "Noop",
    "Packing",    "Padding",
    "Permute",    "PixelShuffle",
    "Pooling",    "Power",
    "ReLU",       "Reorg",
    "Reshape",    "Sigmoid",
    "Slice",      "Softmax",
    "Split",      "Squeeze",
    "Swish",      "TanH",
    "UnaryOp",    "ShuffleChannel",
    "Reduction",  "Threshold",
};

class BinReader {
  public:
    BinReader(std::span<const uint8_t> bin, const std::string& file) : bin_(bin), file_(file) {}

    // A weight blob: 4-byte storage tag, then fp16 (padded to 4 bytes) or fp32 data.
    WeightTensor tagged(const NcnnLayer& layer, int64_t count, std::vector<int64_t> shape);
    // fp32 values with no tag (biases, PReLU slopes, BatchNorm statistics).
    WeightTensor raw(const NcnnLayer& layer, int64_t count, std::vector<int64_t> shape);
    size_t remaining() const { return bin_.size() - pos_; }

  private:
    const uint8_t* take(const NcnnLayer& layer, uint64_t bytes) {
        if (bytes > remaining()) {
            throw core::Error(core::ErrorCode::BAD_FILE,
                              file_ + ": too short for the .param: layer '" + layer.name +
                                  "' needs " + std::to_string(bytes) + " bytes at offset " +
                                  std::to_string(pos_) + ", only " + std::to_string(remaining()) +
                                  " present");
        }
        const uint8_t* p = bin_.data() + pos_;
        pos_ += bytes;
        return p;
    }
    void check_count(const NcnnLayer& layer, int64_t count) const {
        if (count < 0 || count > kMaxElements) {
            throw core::Error(core::ErrorCode::BAD_FILE, file_ + ": layer '" + layer.name +
                                                             "' declares " + std::to_string(count) +
                                                             " weights");
        }
    }

    std::span<const uint8_t> bin_;
    const std::string& file_;
    size_t pos_ = 0;
};

WeightTensor BinReader::raw(const NcnnLayer& layer, int64_t count, std::vector<int64_t> shape) {
    check_count(layer, count);
    const uint8_t* p = take(layer, static_cast<uint64_t>(count) * 4);
    WeightTensor t;
    t.shape = std::move(shape);
    t.data.resize(static_cast<size_t>(count));
    detail::convert_to_f32(p, t.data.size(), StorageDType::F32, t.data.data());
    return t;
}

WeightTensor BinReader::tagged(const NcnnLayer& layer, int64_t count, std::vector<int64_t> shape) {
    check_count(layer, count);
    const uint8_t* tag_bytes = take(layer, 4);
    const uint32_t tag = detail::load_le<uint32_t>(tag_bytes);
    WeightTensor t;
    t.shape = std::move(shape);
    if (tag == kTagF16) {
        const uint64_t bytes = (static_cast<uint64_t>(count) * 2 + 3) / 4 * 4;
        const uint8_t* p = take(layer, bytes);
        t.stored_as = StorageDType::F16;
        t.data.resize(static_cast<size_t>(count));
        detail::convert_to_f32(p, t.data.size(), StorageDType::F16, t.data.data());
        return t;
    }
    if (tag == kTagInt8) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          file_ + ": layer '" + layer.name + "' has int8 weights");
    }
    if (tag != 0 && tag != kTagF32Raw) {
        throw core::Error(core::ErrorCode::UNSUPPORTED, file_ + ": layer '" + layer.name +
                                                            "' has table-quantised weights (tag " +
                                                            std::to_string(tag) + ")");
    }
    const uint8_t* p = take(layer, static_cast<uint64_t>(count) * 4);
    t.data.resize(static_cast<size_t>(count));
    detail::convert_to_f32(p, t.data.size(), StorageDType::F32, t.data.data());
    return t;
}

[[noreturn]] void bad_param(const std::string& file,
                            const NcnnLayer& layer,
                            const std::string& what) {
    throw core::Error(core::ErrorCode::BAD_FILE,
                      file + ": layer '" + layer.name + "' (" + layer.type + "): " + what);
}

// ncnn stores deconvolution weights per group as [out/g][in/g][kh][kw]; PyTorch's
// ConvTranspose2d wants [in][out/g][kh][kw] with in = g * (in/g).
void deconv_to_torch(WeightTensor& w, int64_t group, int64_t out_g, int64_t in_g, int64_t khw) {
    std::vector<float> out(w.data.size());
    for (int64_t g = 0; g < group; ++g)
        for (int64_t o = 0; o < out_g; ++o)
            for (int64_t i = 0; i < in_g; ++i)
                for (int64_t k = 0; k < khw; ++k)
                    out[static_cast<size_t>((((g * in_g + i) * out_g) + o) * khw + k)] =
                        w.data[static_cast<size_t>((((g * out_g + o) * in_g) + i) * khw + k)];
    w.data = std::move(out);
    w.shape = {group * in_g, out_g, w.shape[2], w.shape[3]};
}

void read_convolution(NcnnLayer& layer, BinReader& r, const std::string& file) {
    const bool depthwise = layer.type.ends_with("DepthWise");
    const bool deconv = layer.type.starts_with("Deconvolution");
    const int64_t out = layer.param_int(0, 0);
    const int64_t kw = layer.param_int(1, 0);
    const int64_t kh = layer.param_int(11, static_cast<int>(kw));
    const int64_t size = layer.param_int(6, 0);
    const int64_t group = depthwise ? layer.param_int(7, 1) : 1;
    if (layer.param_int(8, 0) != 0) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          file + ": layer '" + layer.name + "' is int8-quantised");
    }
    if (out <= 0 || kw <= 0 || kh <= 0 || group <= 0 || out % group != 0 || out > (1 << 20) ||
        kw > 4096 || kh > 4096 || size <= 0 || size % (out * kh * kw) != 0) {
        bad_param(file, layer, "inconsistent num_output/kernel/group/weight_data_size");
    }
    const int64_t in_g = size / (out * kh * kw);  // input channels per group
    WeightTensor w = r.tagged(layer, size, {out, in_g, kh, kw});
    if (deconv)
        deconv_to_torch(w, group, out / group, in_g, kh * kw);
    layer.weights["weight"] = std::move(w);
    if (layer.param_int(5, 0) != 0)
        layer.weights["bias"] = r.raw(layer, out, {out});
}

void read_layer(NcnnLayer& layer, BinReader& r, const std::string& file) {
    const std::string& type = layer.type;
    if (type == "Convolution" || type == "ConvolutionDepthWise" || type == "Deconvolution" ||
        type == "DeconvolutionDepthWise") {
        read_convolution(layer, r, file);
    } else if (type == "InnerProduct") {
        const int64_t out = layer.param_int(0, 0);
        const int64_t size = layer.param_int(2, 0);
        if (layer.param_int(8, 0) != 0) {
            throw core::Error(core::ErrorCode::UNSUPPORTED,
                              file + ": layer '" + layer.name + "' is int8-quantised");
        }
        if (out <= 0 || size <= 0 || size % out != 0)
            bad_param(file, layer, "inconsistent num_output/weight_data_size");
        layer.weights["weight"] = r.tagged(layer, size, {out, size / out});
        if (layer.param_int(1, 0) != 0)
            layer.weights["bias"] = r.raw(layer, out, {out});
    } else if (type == "PReLU") {
        const int64_t n = layer.param_int(0, 0);
        if (n <= 0)
            bad_param(file, layer, "num_slope must be positive");
        layer.weights["slope"] = r.raw(layer, n, {n});
    } else if (type == "Scale") {
        const int64_t n = layer.param_int(0, 0);
        if (n == -233)
            return;  // scale comes from a second input blob
        if (n <= 0)
            bad_param(file, layer, "scale_data_size must be positive");
        layer.weights["scale"] = r.raw(layer, n, {n});
        if (layer.param_int(1, 0) != 0)
            layer.weights["bias"] = r.raw(layer, n, {n});
    } else if (type == "BatchNorm") {
        const int64_t n = layer.param_int(0, 0);
        if (n <= 0)
            bad_param(file, layer, "channels must be positive");
        for (const char* name : {"slope", "mean", "var", "bias"})
            layer.weights[name] = r.raw(layer, n, {n});
    } else {
        for (std::string_view w : kWeightless) {
            if (type == w)
                return;
        }
        throw core::Error(core::ErrorCode::UNSUPPORTED, file + ": ncnn layer type '" + type +
                                                            "' (layer '" + layer.name +
                                                            "') is not supported");
    }
}

}  // namespace

void read_ncnn_weights(NcnnGraph& graph, std::span<const uint8_t> bin, const std::string& file) {
    BinReader r(bin, file);
    for (NcnnLayer& layer : graph.layers)
        read_layer(layer, r, file);
    // Extra bytes mean the .bin was written for a different .param: refuse rather than guess.
    if (r.remaining() != 0) {
        throw core::Error(
            core::ErrorCode::BAD_FILE,
            file + ": " + std::to_string(r.remaining()) +
                " bytes left after the last layer's weights (.bin does not match .param)");
    }
}

}  // namespace kiln::weights
