#include "engine/graph/graph.h"

#include <string>

#include "core/error.h"
#include "engine/graph/deconv_lowering.h"

namespace kiln::engine {

namespace {

void require(bool ok, const std::string& what) {
    if (!ok)
        throw core::Error(core::ErrorCode::INTERNAL, "graph: " + what);
}

// Channel counts, weight and bias sizes of a (transposed) convolution reading in_c channels.
void check_weights(const std::string& name, int in_c, const ConvWeights& weights) {
    require(weights.in_channels == in_c, name + ": input has " + std::to_string(in_c) +
                                             " channels, weights expect " +
                                             std::to_string(weights.in_channels));
    require(weights.groups >= 1 && weights.in_channels % weights.groups == 0 &&
                weights.out_channels % weights.groups == 0,
            name + ": groups must divide the input and output channel counts");
    require(weights.weight && weights.weight->size() ==
                                  static_cast<size_t>(weights.out_channels) *
                                      static_cast<size_t>(weights.in_channels / weights.groups) *
                                      static_cast<size_t>(weights.kernel * weights.kernel),
            name + ": weight size");
    require(!weights.bias || weights.bias->size() == static_cast<size_t>(weights.out_channels),
            name + ": bias size");
}

}  // namespace

const char* op_kind_name(OpKind kind) {
    switch (kind) {
        case OpKind::INPUT:
            return "input";
        case OpKind::CONV2D:
            return "conv2d";
        case OpKind::UPSAMPLE_NEAREST:
            return "upsample_nearest";
        case OpKind::UPSAMPLE_BILINEAR:
            return "upsample_bilinear";
        case OpKind::PIXEL_SHUFFLE:
            return "pixel_shuffle";
        case OpKind::PIXEL_UNSHUFFLE:
            return "pixel_unshuffle";
        case OpKind::RESIZE_BICUBIC:
            return "resize_bicubic";
        case OpKind::ADD:
            return "add";
        case OpKind::OUTPUT:
            return "output";
        case OpKind::GROUP_NORM:
            return "group_norm";
        case OpKind::LAYER_NORM:
            return "layer_norm";
        case OpKind::ACTIVATION:
            return "activation";
        case OpKind::GEGLU:
            return "geglu";
        case OpKind::ATTENTION:
            return "attention";
        case OpKind::CONCAT:
            return "concat";
        case OpKind::GLOBAL_AVG_POOL:
            return "global_avg_pool";
        case OpKind::MUL:
            return "mul";
        case OpKind::CROP:
            return "crop";
        case OpKind::MAX_POOL:
            return "max_pool";
        case OpKind::RESIZE_BILINEAR:
            return "resize_bilinear";
        case OpKind::WINDOW_ATTENTION:
            return "window_attention";
        case OpKind::CHANNEL_ATTENTION:
            return "channel_attention";
    }
    return "?";
}

int group_pixels(OpKind kind, const WindowAttentionParams& params, int h, int w) {
    const int ws = params.window;
    if (kind == OpKind::CHANNEL_ATTENTION && params.groups == PixelGroups::GRID)
        return (h / ws) * (w / ws);
    return ws * ws;
}

int conv_output_size(int size, const ConvWeights& w) {
    return (size + 2 * w.padding() - w.kernel) / w.stride + 1;
}

int deconv_output_size(int size, const ConvWeights& w) {
    return (size - 1) * w.stride + w.kernel - 2 * w.padding();
}

const Value& Graph::value(ValueId id) const {
    require(id >= 0 && id < static_cast<int>(values_.size()), "bad value id");
    return values_[static_cast<size_t>(id)];
}

ValueId Graph::new_buffer_value(int h, int w, int c) {
    require(h > 0 && w > 0 && c > 0, "empty shape");
    buffers_.push_back({h, w, c});
    values_.push_back({static_cast<int>(buffers_.size()) - 1, h, w, c, 0});
    return static_cast<ValueId>(values_.size()) - 1;
}

ValueId Graph::push_op(Op op, ValueId out) {
    op.output = out;
    ops_.push_back(std::move(op));
    return out;
}

ValueId Graph::input(int h, int w, int c) {
    require(output_ == kNoValue, "inputs come before the output");
    const ValueId v = new_buffer_value(h, w, c);
    inputs_.push_back(v);
    Op op;
    op.kind = OpKind::INPUT;
    op.name = inputs_.size() == 1 ? "input" : "input" + std::to_string(inputs_.size() - 1);
    return push_op(std::move(op), v);
}

void Graph::output(ValueId v) {
    require(output_ == kNoValue, "a graph has one output");
    const Value src = value(v);  // a copy: new_buffer_value grows values_
    output_ = new_buffer_value(src.h, src.w, src.c);
    Op op;
    op.kind = OpKind::OUTPUT;
    op.name = "output";
    op.inputs = {v};
    push_op(std::move(op), output_);
}

void Graph::drop_ops_not_reaching_output() {
    require(output_ != kNoValue, "drop_ops_not_reaching_output: no output yet");
    // Walk back from the output buffer-wise: an op is needed when it writes a buffer a needed
    // op reads (views of one buffer are written by several ops, so buffers, not values).
    std::vector<bool> needed_buffer(buffers_.size(), false);
    needed_buffer[static_cast<size_t>(value(output_).buffer)] = true;
    std::vector<bool> keep(ops_.size(), false);
    for (size_t i = ops_.size(); i-- > 0;) {
        const Op& op = ops_[i];
        if (op.kind != OpKind::INPUT &&
            !needed_buffer[static_cast<size_t>(value(op.output).buffer)])
            continue;
        keep[i] = true;
        for (ValueId in : op.inputs)
            needed_buffer[static_cast<size_t>(value(in).buffer)] = true;
    }
    std::vector<Op> kept;
    for (size_t i = 0; i < ops_.size(); ++i) {
        if (keep[i])
            kept.push_back(std::move(ops_[i]));
    }
    ops_ = std::move(kept);
}

ValueId Graph::buffer(int h, int w, int c) {
    return new_buffer_value(h, w, c);
}

ValueId Graph::channels(ValueId v, int c0, int c) {
    Value view = value(v);
    require(c0 >= 0 && c > 0 && c0 + c <= view.c, "channel view out of range");
    view.c_offset += c0;
    view.c = c;
    values_.push_back(view);
    return static_cast<ValueId>(values_.size()) - 1;
}

ValueId Graph::conv2d(const std::string& name,
                      ValueId x,
                      ConvWeights weights,
                      Epilogue epilogue,
                      ValueId into) {
    const Value in = value(x);  // a copy: new_buffer_value grows values_
    check_weights(name, in.c, weights);
    require(epilogue.act != Activation::PRELU ||
                epilogue.prelu_slope.size() == static_cast<size_t>(weights.out_channels),
            name + ": prelu slope count");
    require(weights.stride >= 1 && weights.kernel >= 1 && weights.pad < weights.kernel &&
                (weights.kernel % 2 == 1 || weights.pad >= 0),
            name + ": stride must be positive, an even kernel needs its padding given");
    const int out_h = conv_output_size(in.h, weights);
    const int out_w = conv_output_size(in.w, weights);
    require(in.h + 2 * weights.padding() >= weights.kernel &&
                in.w + 2 * weights.padding() >= weights.kernel,
            name + ": input smaller than the kernel");
    ValueId out = into;
    if (out == kNoValue) {
        out = new_buffer_value(out_h, out_w, weights.out_channels);
    } else {
        const Value& o = value(out);
        require(o.h == out_h && o.w == out_w && o.c == weights.out_channels,
                name + ": destination view shape");
    }
    for (const ResidualAdd& add : epilogue.adds) {
        const Value& r = value(add.residual);
        require(r.h == out_h && r.w == out_w && r.c == weights.out_channels,
                name + ": residual shape");
    }
    Op op;
    op.kind = OpKind::CONV2D;
    op.name = name;
    op.inputs = {x};
    for (const ResidualAdd& add : epilogue.adds)
        op.inputs.push_back(add.residual);
    op.conv = std::move(weights);
    op.epilogue = std::move(epilogue);
    return push_op(std::move(op), out);
}

ValueId Graph::upsample(OpKind kind, ValueId x, int factor) {
    const Value in = value(x);
    require(factor >= 1, "upsample factor");
    Op op;
    op.kind = kind;
    op.name = op_kind_name(kind);
    op.inputs = {x};
    op.factor = factor;
    return push_op(std::move(op), new_buffer_value(in.h * factor, in.w * factor, in.c));
}

ValueId Graph::upsample_nearest(ValueId x, int factor) {
    return upsample(OpKind::UPSAMPLE_NEAREST, x, factor);
}

ValueId Graph::upsample_bilinear(ValueId x, int factor) {
    return upsample(OpKind::UPSAMPLE_BILINEAR, x, factor);
}

ValueId Graph::resize_bicubic(ValueId x, int out_h, int out_w) {
    const Value in = value(x);
    Op op;
    op.kind = OpKind::RESIZE_BICUBIC;
    op.name = op_kind_name(op.kind);
    op.inputs = {x};
    return push_op(std::move(op), new_buffer_value(out_h, out_w, in.c));
}

ValueId Graph::pixel_shuffle(ValueId x, int r) {
    const Value in = value(x);
    require(r >= 1 && in.c % (r * r) == 0, "pixel_shuffle: channels not divisible by r*r");
    Op op;
    op.kind = OpKind::PIXEL_SHUFFLE;
    op.name = "pixel_shuffle";
    op.inputs = {x};
    op.factor = r;
    return push_op(std::move(op), new_buffer_value(in.h * r, in.w * r, in.c / (r * r)));
}

ValueId Graph::pixel_unshuffle(ValueId x, int r) {
    const Value in = value(x);
    require(r >= 1 && in.h % r == 0 && in.w % r == 0, "pixel_unshuffle: size not divisible");
    Op op;
    op.kind = OpKind::PIXEL_UNSHUFFLE;
    op.name = "pixel_unshuffle";
    op.inputs = {x};
    op.factor = r;
    return push_op(std::move(op), new_buffer_value(in.h / r, in.w / r, in.c * r * r));
}

ValueId Graph::binary(OpKind kind, ValueId a, ValueId b, float scale_a) {
    const Value va = value(a);
    const Value vb = value(b);
    const bool broadcast = vb.h == 1 && vb.w == 1;
    require(((va.h == vb.h && va.w == vb.w) || broadcast) && va.c == vb.c,
            std::string(op_kind_name(kind)) + ": shapes differ");
    Op op;
    op.kind = kind;
    op.name = op_kind_name(kind);
    op.inputs = {a, b};
    op.scale = scale_a;
    return push_op(std::move(op), new_buffer_value(va.h, va.w, va.c));
}

ValueId Graph::add(ValueId a, ValueId b, float scale_a) {
    return binary(OpKind::ADD, a, b, scale_a);
}

ValueId Graph::norm(OpKind kind, const std::string& name, ValueId x, NormParams params) {
    const Value in = value(x);
    require(params.gamma && params.gamma->size() == static_cast<size_t>(in.c) && params.beta &&
                params.beta->size() == static_cast<size_t>(in.c),
            name + ": gamma and beta need one value per channel");
    require(kind != OpKind::GROUP_NORM || (params.groups >= 1 && in.c % params.groups == 0),
            name + ": groups must divide the channel count");
    require(params.act == Activation::NONE || params.act == Activation::SILU,
            name + ": a norm may be followed by SiLU only");
    Op op;
    op.kind = kind;
    op.name = name;
    op.inputs = {x};
    op.norm = std::move(params);
    return push_op(std::move(op), new_buffer_value(in.h, in.w, in.c));
}

ValueId Graph::group_norm(const std::string& name, ValueId x, NormParams params) {
    return norm(OpKind::GROUP_NORM, name, x, std::move(params));
}

ValueId Graph::layer_norm(const std::string& name, ValueId x, NormParams params) {
    return norm(OpKind::LAYER_NORM, name, x, std::move(params));
}

ValueId Graph::activation(ValueId x, Activation act) {
    const Value in = value(x);
    require(act == Activation::RELU || act == Activation::SILU || act == Activation::GELU,
            "activation: RELU, SILU or GELU");
    Op op;
    op.kind = OpKind::ACTIVATION;
    op.name = "activation";
    op.inputs = {x};
    op.act = act;
    return push_op(std::move(op), new_buffer_value(in.h, in.w, in.c));
}

ValueId Graph::geglu(ValueId x) {
    const Value in = value(x);
    require(in.c % 2 == 0, "geglu: odd channel count");
    Op op;
    op.kind = OpKind::GEGLU;
    op.name = "geglu";
    op.inputs = {x};
    return push_op(std::move(op), new_buffer_value(in.h, in.w, in.c / 2));
}

ValueId Graph::attention(const std::string& name,
                         ValueId q,
                         ValueId k,
                         ValueId v,
                         AttentionParams params) {
    const Value vq = value(q);
    const Value vk = value(k);
    const Value vv = value(v);
    require(vq.c == vk.c && vk.c == vv.c, name + ": q, k and v channel counts differ");
    require(vk.h == vv.h && vk.w == vv.w, name + ": k and v token counts differ");
    require(params.heads >= 1 && vq.c % params.heads == 0,
            name + ": heads must divide the channel count");
    Op op;
    op.kind = OpKind::ATTENTION;
    op.name = name;
    op.inputs = {q, k, v};
    op.attention = params;
    return push_op(std::move(op), new_buffer_value(vq.h, vq.w, vq.c));
}

ValueId Graph::concat(ValueId a, ValueId b) {
    const Value va = value(a);
    const Value vb = value(b);
    require(va.h == vb.h && va.w == vb.w, "concat: sizes differ");
    Op op;
    op.kind = OpKind::CONCAT;
    op.name = "concat";
    op.inputs = {a, b};
    return push_op(std::move(op), new_buffer_value(va.h, va.w, va.c + vb.c));
}

ValueId Graph::deconv2d(const std::string& name,
                        ValueId x,
                        ConvWeights weights,
                        Epilogue epilogue) {
    const Value in = value(x);
    check_weights(name, in.c, weights);
    require(weights.stride >= 1 && weights.kernel >= 1 && weights.pad >= 0 &&
                weights.pad < weights.kernel,
            name + ": stride must be positive and the padding given, below the kernel");
    require(weights.groups == 1, name + ": transposed convolutions are not grouped");
    require(epilogue.adds.empty() && epilogue.act != Activation::PRELU,
            name + ": a transposed convolution's epilogue is an activation (not PReLU)");
    const int out_h = deconv_output_size(in.h, weights);
    const int out_w = deconv_output_size(in.w, weights);
    require(out_h > 0 && out_w > 0, name + ": output would be empty");
    const SubPixelConv sub = subpixel_conv_of(weights, in.h, in.w);
    const ValueId phases = conv2d(name, x, sub.conv, std::move(epilogue));
    const ValueId full = sub.factor > 1 ? pixel_shuffle(phases, sub.factor) : phases;
    const Value f = value(full);
    if (sub.crop == 0 && f.h == sub.out_h && f.w == sub.out_w)
        return full;
    return crop(full, sub.crop, sub.crop, sub.out_h, sub.out_w);
}

ValueId Graph::global_avg_pool(ValueId x) {
    const Value in = value(x);
    Op op;
    op.kind = OpKind::GLOBAL_AVG_POOL;
    op.name = "global_avg_pool";
    op.inputs = {x};
    return push_op(std::move(op), new_buffer_value(1, 1, in.c));
}

ValueId Graph::mul(ValueId a, ValueId b) {
    return binary(OpKind::MUL, a, b, 1.0f);
}

ValueId Graph::crop(ValueId x, int top, int left, int h, int w) {
    const Value in = value(x);
    require(top >= 0 && left >= 0 && h > 0 && w > 0 && top + h <= in.h && left + w <= in.w,
            "crop: window outside the input");
    Op op;
    op.kind = OpKind::CROP;
    op.name = "crop";
    op.inputs = {x};
    op.crop_top = top;
    op.crop_left = left;
    return push_op(std::move(op), new_buffer_value(h, w, in.c));
}

ValueId Graph::max_pool(ValueId x, int kernel, int stride) {
    const Value in = value(x);
    require(kernel >= 1 && stride >= 1 && in.h >= kernel && in.w >= kernel,
            "max_pool: the input must hold one window");
    Op op;
    op.kind = OpKind::MAX_POOL;
    op.name = "max_pool";
    op.inputs = {x};
    op.pool_kernel = kernel;
    op.pool_stride = stride;
    return push_op(std::move(op), new_buffer_value((in.h - kernel) / stride + 1,
                                                   (in.w - kernel) / stride + 1, in.c));
}

ValueId Graph::resize_bilinear(ValueId x, int out_h, int out_w) {
    const Value in = value(x);
    Op op;
    op.kind = OpKind::RESIZE_BILINEAR;
    op.name = op_kind_name(op.kind);
    op.inputs = {x};
    return push_op(std::move(op), new_buffer_value(out_h, out_w, in.c));
}

ValueId Graph::grouped_attention(OpKind kind,
                                 const std::string& name,
                                 ValueId qkv,
                                 WindowAttentionParams params) {
    const Value in = value(qkv);
    const int ws = params.window;
    require(in.c % 3 == 0 && params.heads >= 1 && (in.c / 3) % params.heads == 0,
            name + ": qkv must be 3 x c channels, c a multiple of the heads");
    require(ws >= 1 && in.h % ws == 0 && in.w % ws == 0,
            name + ": the map must be a whole number of windows");
    const int c = in.c / 3;
    if (kind == OpKind::WINDOW_ATTENTION) {
        const size_t n = static_cast<size_t>(ws) * static_cast<size_t>(ws);
        require(!params.bias || params.bias->size() == static_cast<size_t>(params.heads) * n * n,
                name + ": the position bias must be [heads, ws * ws, ws * ws]");
    } else {
        require(
            params.temperature && params.temperature->size() == static_cast<size_t>(params.heads),
            name + ": one temperature per head");
    }
    Op op;
    op.kind = kind;
    op.name = name;
    op.inputs = {qkv};
    op.window = std::move(params);
    return push_op(std::move(op), new_buffer_value(in.h, in.w, c));
}

ValueId Graph::window_attention(const std::string& name,
                                ValueId qkv,
                                WindowAttentionParams params) {
    return grouped_attention(OpKind::WINDOW_ATTENTION, name, qkv, std::move(params));
}

ValueId Graph::channel_attention(const std::string& name,
                                 ValueId qkv,
                                 WindowAttentionParams params) {
    return grouped_attention(OpKind::CHANNEL_ATTENTION, name, qkv, std::move(params));
}

double Graph::matmul_flops() const {
    double flops = conv_flops();
    for (const Op& op : ops_) {
        if (op.kind == OpKind::ATTENTION) {
            const Value& q = values_[static_cast<size_t>(op.inputs[0])];
            const Value& k = values_[static_cast<size_t>(op.inputs[1])];
            flops += 2.0 * 2.0 * q.h * q.w * k.h * k.w * q.c;
        } else if (op.kind == OpKind::WINDOW_ATTENTION || op.kind == OpKind::CHANNEL_ATTENTION) {
            // Both products touch every pixel once per partner: n tokens (window) or the
            // head's d channels (channel).
            const Value& out = values_[static_cast<size_t>(op.output)];
            const double partners = op.kind == OpKind::WINDOW_ATTENTION
                                        ? static_cast<double>(op.window.window) * op.window.window
                                        : static_cast<double>(out.c) / op.window.heads;
            flops += 2.0 * 2.0 * out.h * out.w * out.c * partners;
        }
    }
    return flops;
}

double Graph::conv_flops() const {
    double flops = 0;
    for (const Op& op : ops_) {
        if (op.kind != OpKind::CONV2D)
            continue;
        const Value& out = values_[static_cast<size_t>(op.output)];
        flops += 2.0 * out.h * out.w * out.c * (op.conv.in_channels / op.conv.groups) *
                 op.conv.kernel * op.conv.kernel;
    }
    return flops;
}

}  // namespace kiln::engine
