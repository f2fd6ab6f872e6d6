// The convolution epilogue's per-chunk work, host-device: the CUDA kernel (activation.cu)
// and the CPU tests run this same code (tests/kernels/kernel_body_test.cpp).
#pragma once

#include "kernels/half_io.h"
#include "kernels/pointwise_math.h"
#include "kernels/view_math.h"

namespace kiln::kernels {

inline constexpr int kMaxResidualAdds = 4;

struct EpilogueParams {
    VecPlan plan;
    ViewDesc src_d, dst_d;
    const uint16_t* src;
    uint16_t* dst;
    const float* bias;   // [c] or null
    const float* prelu;  // [c] for PRELU
    Act act;
    float alpha;
    int num_adds;
    ViewDesc res_d[kMaxResidualAdds];
    const uint16_t* res[kMaxResidualAdds];
    float scale[kMaxResidualAdds];
};

// dst = act(src + bias), then dst = dst * scale[k] + res[k], for V elements from (row, col).
template <int V>
KILN_HD inline void epilogue_chunk(const EpilogueParams& p, int64_t row, int64_t col) {
    float v[V];
    load_halves<V>(p.src + plan_offset(p.src_d, p.plan, row, col), v);
    KILN_UNROLL
    for (int i = 0; i < V; ++i) {
        const int ch = plan_channel(p.dst_d, p.plan, col + i);
        const float x = v[i] + (p.bias ? p.bias[ch] : 0.0f);
        v[i] = activate(x, p.act, p.act == Act::PRELU ? p.prelu[ch] : p.alpha);
    }
    for (int k = 0; k < p.num_adds; ++k) {
        float r[V];
        load_halves<V>(p.res[k] + plan_offset(p.res_d[k], p.plan, row, col), r);
        KILN_UNROLL
        for (int i = 0; i < V; ++i)
            v[i] = v[i] * p.scale[k] + r[i];
    }
    store_halves<V>(p.dst + plan_offset(p.dst_d, p.plan, row, col), v);
}

struct EpilogueArgs {
    const float* bias = nullptr;  // [c] fp32, or null
    Act act = Act::NONE;
    float alpha = 0.0f;                  // LEAKY_RELU slope
    const float* prelu_slope = nullptr;  // [c] fp32 for PRELU
    int num_adds = 0;
    DeviceView residual[kMaxResidualAdds];
    float scale[kMaxResidualAdds] = {1.0f, 1.0f, 1.0f, 1.0f};
};

// The entry's Params, vector plan included (from the views' shapes and addresses).
inline EpilogueParams make_epilogue_params(const DeviceView& src,
                                           const DeviceView& dst,
                                           const EpilogueArgs& args) {
    EpilogueParams p{};
    p.src_d = src.desc;
    p.dst_d = dst.desc;
    p.src = src.data;
    p.dst = dst.data;
    p.bias = args.bias;
    p.prelu = args.prelu_slope;
    p.act = args.act;
    p.alpha = args.alpha;
    p.num_adds = args.num_adds;
    ViewDesc descs[2 + kMaxResidualAdds] = {src.desc, dst.desc};
    uintptr_t addrs[2 + kMaxResidualAdds] = {reinterpret_cast<uintptr_t>(src.data),
                                             reinterpret_cast<uintptr_t>(dst.data)};
    for (int k = 0; k < args.num_adds; ++k) {
        p.res_d[k] = args.residual[k].desc;
        p.res[k] = args.residual[k].data;
        p.scale[k] = args.scale[k];
        descs[2 + k] = args.residual[k].desc;
        addrs[2 + k] = reinterpret_cast<uintptr_t>(args.residual[k].data);
    }
    p.plan = plan_vectors(descs, addrs, 2 + args.num_adds);
    return p;
}

// The kernel's walk on one host thread: every vector chunk, then the scalar tail.
inline void epilogue_host(const EpilogueParams& p) {
    for (int64_t k = 0; k < p.plan.chunks(); ++k) {
        if (p.plan.vec == kHalfVector)
            epilogue_chunk<kHalfVector>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
        else
            epilogue_chunk<1>(p, p.plan.chunk_row(k), p.plan.chunk_col(k));
    }
    for (int t = 0; t < p.plan.tail; ++t)
        epilogue_chunk<1>(p, 0, p.plan.tail_start() + t);
}

}  // namespace kiln::kernels
