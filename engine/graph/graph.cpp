#include "engine/graph/graph.h"

#include <string>

#include "engine/core/error.h"

namespace kiln::engine {

namespace {

void require(bool ok, const std::string& what) {
    if (!ok)
        throw Error(ErrorCode::INTERNAL, "graph: " + what);
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
    }
    return "?";
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
    require(input_ == kNoValue, "a graph has one input");
    input_ = new_buffer_value(h, w, c);
    Op op;
    op.kind = OpKind::INPUT;
    op.name = "input";
    return push_op(std::move(op), input_);
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
    require(weights.in_channels == in.c, name + ": input has " + std::to_string(in.c) +
                                             " channels, weights expect " +
                                             std::to_string(weights.in_channels));
    require(weights.weight &&
                weights.weight->size() == static_cast<size_t>(weights.out_channels) *
                                              static_cast<size_t>(weights.in_channels) *
                                              static_cast<size_t>(weights.kernel * weights.kernel),
            name + ": weight size");
    require(!weights.bias || weights.bias->size() == static_cast<size_t>(weights.out_channels),
            name + ": bias size");
    require(epilogue.act != Activation::PRELU ||
                epilogue.prelu_slope.size() == static_cast<size_t>(weights.out_channels),
            name + ": prelu slope count");
    ValueId out = into;
    if (out == kNoValue) {
        out = new_buffer_value(in.h, in.w, weights.out_channels);
    } else {
        const Value& o = value(out);
        require(o.h == in.h && o.w == in.w && o.c == weights.out_channels,
                name + ": destination view shape");
    }
    for (const ResidualAdd& add : epilogue.adds) {
        const Value& r = value(add.residual);
        require(r.h == in.h && r.w == in.w && r.c == weights.out_channels,
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

ValueId Graph::add(ValueId a, ValueId b, float scale_a) {
    const Value va = value(a);
    const Value vb = value(b);
    require(va.h == vb.h && va.w == vb.w && va.c == vb.c, "add: shapes differ");
    Op op;
    op.kind = OpKind::ADD;
    op.name = "add";
    op.inputs = {a, b};
    op.scale = scale_a;
    return push_op(std::move(op), new_buffer_value(va.h, va.w, va.c));
}

double Graph::conv_flops() const {
    double flops = 0;
    for (const Op& op : ops_) {
        if (op.kind != OpKind::CONV2D)
            continue;
        const Value& out = values_[static_cast<size_t>(op.output)];
        flops +=
            2.0 * out.h * out.w * out.c * op.conv.in_channels * op.conv.kernel * op.conv.kernel;
    }
    return flops;
}

}  // namespace kiln::engine
