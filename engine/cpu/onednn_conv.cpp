#include "engine/cpu/onednn_conv.h"

#include <omp.h>

#include "core/error.h"

namespace kiln::engine::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

memory::dims dims_of(const ViewLayout& l) {
    return {1, l.c, l.h, l.w};
}

bool epilogue_empty(const Epilogue& e) {
    return e.act == Activation::NONE && e.adds.empty();
}

// The first add's scale can move into the weights and bias when the activation is
// positively homogeneous (act(s*y) = s*act(y) for s > 0): none, ReLU, LeakyReLU, PReLU.
bool fold_first_scale(const Epilogue& e) {
    const bool homogeneous =
        e.act != Activation::SILU && e.act != Activation::GELU && e.act != Activation::SIGMOID;
    return homogeneous && !e.adds.empty() && e.adds[0].scale > 0.0f && e.adds[0].scale != 1.0f;
}

const char* act_name(Activation act) {
    switch (act) {
        case Activation::NONE:
            return "";
        case Activation::RELU:
            return "relu";
        case Activation::LEAKY_RELU:
            return "lrelu";
        case Activation::PRELU:
            return "prelu";
        case Activation::SILU:
            return "silu";
        case Activation::GELU:
            return "gelu";
        case Activation::SIGMOID:
            return "sigmoid";
    }
    return "";
}

// PyTorch's weight [out, in / groups, k, k] as oneDNN dimensions: oihw, or goihw when grouped.
memory::dims weight_dims(const ConvWeights& w) {
    if (w.groups == 1)
        return {w.out_channels, w.in_channels, w.kernel, w.kernel};
    return {w.groups, w.out_channels / w.groups, w.in_channels / w.groups, w.kernel, w.kernel};
}

memory::format_tag plain_weight_tag(const ConvWeights& w) {
    return w.groups == 1 ? tag::oihw : tag::goihw;
}

}  // namespace

memory::desc view_desc(const ViewLayout& l) {
    if (l.planar) {
        const memory::dims strides = {int64_t{l.c_total} * l.pixels(), l.pixels(), l.w, 1};
        return memory::desc(dims_of(l), memory::data_type::f32, strides);
    }
    if (l.blocked()) {
        return memory::desc(dims_of(l), memory::data_type::f32,
                            l.block == 16 ? tag::nChw16c : tag::nChw8c);
    }
    const memory::dims strides = {l.pixels() * l.c_total, 1, int64_t{l.w} * l.c_total, l.c_total};
    return memory::desc(dims_of(l), memory::data_type::f32, strides);
}

OnednnConv::OnednnConv(const dnnl::engine& engine, const ConvSetup& setup)
    : engine_(engine), dst_(setup.dst) {
    const Epilogue& epi = *setup.epilogue;
    const bool square3 = setup.weights->kernel == 3;
    // oneDNN's Winograd is for stride 1 only; strided convolutions go straight to direct.
    const bool wino_ok = setup.algorithm == ConvAlgorithm::AUTO && square3 &&
                         setup.weights->stride == 1 && setup.src.layout.blocked() &&
                         setup.dst.layout.blocked();
    // Preference: Winograd (about twice the direct kernels' speed here) fused, then
    // Winograd plus a pass, then direct fused, then direct plus a pass. An implementation
    // named "ref" is a last resort.
    struct Candidate {
        dnnl::algorithm algorithm;
        bool fuse;
    };
    std::vector<Candidate> candidates;
    if (wino_ok) {
        candidates.push_back({dnnl::algorithm::convolution_winograd, true});
        if (!epilogue_empty(epi))
            candidates.push_back({dnnl::algorithm::convolution_winograd, false});
    }
    candidates.push_back({dnnl::algorithm::convolution_direct, true});
    if (!epilogue_empty(epi))
        candidates.push_back({dnnl::algorithm::convolution_direct, false});

    bool found = false;
    for (const Candidate& c : candidates) {
        if (try_create(setup, c.algorithm, c.fuse) &&
            std::string(pd_.impl_info_str()).rfind("ref", 0) != 0) {
            found = true;
            break;
        }
    }
    if (!found && !try_create(setup, dnnl::algorithm::convolution_direct, true)) {
        throw core::Error(core::ErrorCode::UNSUPPORTED, "oneDNN has no convolution for this shape");
    }

    primitive_ = dnnl::convolution_forward(pd_);
    scratchpad_bytes_ = pd_.scratchpad_desc().get_size();

    // Weights: PyTorch OIHW -> the layout the primitive chose, once.
    const ConvWeights& w = *setup.weights;
    const memory::dims wdims = weight_dims(w);
    std::vector<float> weight = *w.weight;
    if (w.bias)
        bias_ = *w.bias;
    if (fused_ && fold_first_scale(epi)) {
        const float s = epi.adds[0].scale;
        for (float& v : weight)
            v *= s;
        for (float& v : bias_)
            v *= s;
    }
    memory plain({wdims, memory::data_type::f32, plain_weight_tag(w)}, engine_, weight.data());
    weights_ = memory(pd_.weights_desc(), engine_);
    dnnl::stream stream(engine_);
    dnnl::reorder(plain, weights_).execute(stream, plain, weights_);
    stream.wait();

    args_[DNNL_ARG_SRC] =
        memory(pd_.src_desc(), engine_, setup.src.buffer + setup.src.layout.base_offset());
    args_[DNNL_ARG_DST] =
        memory(pd_.dst_desc(), engine_, setup.dst.buffer + setup.dst.layout.base_offset());
    args_[DNNL_ARG_WEIGHTS] = weights_;
    if (w.bias) {
        args_[DNNL_ARG_BIAS] =
            memory({{w.out_channels}, memory::data_type::f32, tag::x}, engine_, bias_.data());
    }

    if (fused_) {
        int index = 0;
        if (epi.act != Activation::NONE) {
            if (epi.act == Activation::PRELU) {
                prelu_ = epi.prelu_slope;
                args_[DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_WEIGHTS] = memory(
                    {{w.out_channels}, memory::data_type::f32, tag::x}, engine_, prelu_.data());
            }
            ++index;
        }
        for (size_t i = 0; i < epi.adds.size(); ++i) {
            if (epi.adds[i].scale != 1.0f && !(i == 0 && fold_first_scale(epi)))
                ++index;
            const CpuView& r = setup.residuals[i];
            args_[DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1] =
                memory(view_desc(r.layout), engine_, r.buffer + r.layout.base_offset());
            ++index;
        }
    } else {
        pass_.act = epi.act;
        pass_.alpha = epi.alpha;
        pass_.prelu_slope = epi.act == Activation::PRELU ? &epi.prelu_slope : nullptr;
        for (size_t i = 0; i < epi.adds.size(); ++i) {
            pass_.adds.emplace_back(setup.residuals[i], epi.adds[i].scale);
        }
    }

    description_ = pd_.impl_info_str();
    if (!fused_ && !epilogue_empty(epi)) {
        description_ +=
            std::string(" + pass(") + act_name(epi.act) + (epi.adds.empty() ? "" : " add") + ")";
    }
}

bool OnednnConv::try_create(const ConvSetup& setup, dnnl::algorithm algorithm, bool fuse) {
    const ConvWeights& w = *setup.weights;
    const Epilogue& epi = *setup.epilogue;
    const memory::desc src = view_desc(setup.src.layout);
    const memory::desc dst = view_desc(setup.dst.layout);
    const memory::desc wts(weight_dims(w), memory::data_type::f32, tag::any);
    const int pad = w.padding();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (fuse) {
        // oneDNN 2.6 computes a chain with two eltwise_linear post-ops wrongly (measured:
        // NMSE 0.04 against the reference), so fuse at most one scale after folding.
        int linear = 0;
        for (size_t i = fold_first_scale(epi) ? 1 : 0; i < epi.adds.size(); ++i) {
            linear += epi.adds[i].scale != 1.0f;
        }
        if (linear > 1)
            return false;
        dnnl::post_ops ops;
        switch (epi.act) {
            case Activation::NONE:
                break;
            case Activation::RELU:
                ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
                break;
            case Activation::LEAKY_RELU:
                ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, epi.alpha, 0.0f);
                break;
            case Activation::PRELU:
                ops.append_prelu(1 << 1);
                break;
            case Activation::SILU:
                ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
                break;
            case Activation::GELU:
                ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
                break;
            case Activation::SIGMOID:
                ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_logistic, 0.0f, 0.0f);
                break;
        }
        for (size_t i = 0; i < epi.adds.size(); ++i) {
            if (epi.adds[i].scale != 1.0f && !(i == 0 && fold_first_scale(epi))) {
                ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, epi.adds[i].scale, 0.0f);
            }
            ops.append_binary(dnnl::algorithm::binary_add, view_desc(setup.residuals[i].layout));
        }
        attr.set_post_ops(ops);
    }
    try {
        const auto bias = w.bias ? memory::desc({w.out_channels}, memory::data_type::f32, tag::x)
                                 : memory::desc();
        dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm, src,
                                             wts, bias, dst, {w.stride, w.stride}, {pad, pad},
                                             {pad, pad});
        pd_ = dnnl::convolution_forward::primitive_desc(desc, attr, engine_);
    } catch (const dnnl::error&) {
        return false;
    }
    fused_ = fuse;
    return true;
}

void OnednnConv::bind_scratchpad(void* ptr) {
    args_[DNNL_ARG_SCRATCHPAD] = memory(pd_.scratchpad_desc(), engine_, ptr);
    // The C++ execute() builds a vector of arguments on every call; the C API takes this
    // array, made once, so running allocates nothing.
    c_args_.clear();
    for (const auto& [arg, mem] : args_)
        c_args_.push_back({arg, mem.get()});
}

void OnednnConv::execute(dnnl::stream& stream, int threads) {
    const dnnl_status_t status = dnnl_primitive_execute(
        primitive_.get(), stream.get(), static_cast<int>(c_args_.size()), c_args_.data());
    if (status != dnnl_success) {
        throw core::Error(core::ErrorCode::INTERNAL,
                          "oneDNN convolution failed (status " + std::to_string(status) + ")");
    }
    if (!pass_.adds.empty() || pass_.act != Activation::NONE)
        op_epilogue(dst_, pass_, threads);
    zero_padding(dst_, threads);
}

}  // namespace kiln::engine::cpu
