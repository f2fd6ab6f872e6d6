// The diffusion UNet's ops on the CPU backend against the naive double-precision reference
// interpreter: group/layer norm, activations, GEGLU, concat, broadcast add, attention and
// strided convolutions, on odd shapes in every buffer layout the layout chooser gives
// (blocked with padding channels, NHWC, planar; views at channel offsets), with channel
// blocks 16 and 8. Tolerance: max |got - want| <= tol * max(1, max |want|), tol 1e-5 for
// the ops alone (fp32 against double; measured below 1e-6) and 1e-4 for graphs with
// convolutions; NMSE <= 1e-9 everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_math.h"
#include "tests/cpu/graph_cases.h"
#include "tests/cpu/reference_graph.h"

namespace kiln::test {
namespace {

using engine::Activation;
using engine::AttentionParams;
using engine::Epilogue;
using engine::Graph;
using engine::NormParams;
using engine::ValueId;
using engine::cpu::ConvAlgorithm;

struct Shape {
    int h, w, c;
};

struct Case {
    std::string name;
    std::vector<Shape> inputs;
    std::function<ValueId(Graph&, const std::vector<ValueId>&)> build;
    double tol = 1e-5;
    float input_scale = 1.0f;
    float input_offset = 0.0f;
};

std::vector<std::vector<float>> make_inputs(const Graph& g,
                                            int batch,
                                            float scale,
                                            float offset,
                                            uint32_t seed) {
    std::vector<std::vector<float>> inputs;
    for (const ValueId id : g.input_values()) {
        const auto& v = g.value(id);
        auto data = random_vector(static_cast<size_t>(v.h) * v.w * v.c * batch,
                                  seed + static_cast<uint32_t>(inputs.size()), scale);
        for (float& x : data)
            x += offset;
        inputs.push_back(std::move(data));
    }
    return inputs;
}

size_t output_floats(const Graph& g) {
    const auto& v = g.value(g.output_value());
    return static_cast<size_t>(v.h) * v.w * v.c;
}

void run_case(const Case& tc, ConvAlgorithm algorithm, int block) {
    Graph g;
    std::vector<ValueId> xs;
    for (const Shape& s : tc.inputs)
        xs.push_back(g.input(s.h, s.w, s.c));
    g.output(tc.build(g, xs));
    const auto inputs = make_inputs(g, 1, tc.input_scale, tc.input_offset, 7);
    const auto want = run_reference(g, inputs);

    engine::cpu::CpuBackendOptions options;
    options.conv_algorithm = algorithm;
    options.block = block;
    auto backend = engine::cpu::make_cpu_backend(options);
    auto context = backend->create_context({2});
    auto plan = backend->compile(g, *context);
    std::vector<const float*> pointers;
    for (const auto& in : inputs)
        pointers.push_back(in.data());
    // Sentinel past the end catches stray writes.
    std::vector<float> got(want.size() + 16, 12345.0f);
    plan->run_batch(pointers, got.data(), 1, {});
    for (size_t i = want.size(); i < got.size(); ++i)
        ASSERT_EQ(got[i], 12345.0f) << tc.name;
    got.resize(want.size());
    const Comparison cmp = compare(got, want);
    double magnitude = 1.0;
    for (const float v : want)
        magnitude = std::max(magnitude, static_cast<double>(std::abs(v)));
    const std::string where = tc.name + " block " + std::to_string(block) +
                              (algorithm == ConvAlgorithm::AUTO ? " auto" : " direct");
    EXPECT_TRUE(cmp.finite) << where;
    EXPECT_LE(cmp.max_abs, tc.tol * magnitude) << where << " nmse " << cmp.nmse << "\n"
                                               << plan->describe();
    EXPECT_LE(cmp.nmse, 1e-9) << where << " max_abs " << cmp.max_abs;
    EXPECT_LE(plan->peak_bytes(), backend->estimate_peak_bytes(g)) << where;
    if (std::getenv("KILN_TEST_VERBOSE")) {
        std::printf("%-60s max_abs %.3g (of %.3g) nmse %.3g\n", where.c_str(), cmp.max_abs,
                    magnitude, cmp.nmse);
    }
}

void run_all(const std::vector<Case>& cases) {
    for (const Case& tc : cases) {
        for (const int block : {16, 8})
            run_case(tc, ConvAlgorithm::DIRECT, block);
        run_case(tc, ConvAlgorithm::AUTO, 0);
    }
}

NormParams norm_params(int c, int groups, Activation act, uint32_t seed) {
    NormParams p;
    p.groups = groups;
    p.eps = 1e-5f;
    auto gamma = random_vector(static_cast<size_t>(c), seed, 0.5f);
    for (float& v : gamma)
        v += 1.0f;
    p.gamma = std::make_shared<const std::vector<float>>(std::move(gamma));
    p.beta = std::make_shared<const std::vector<float>>(
        random_vector(static_cast<size_t>(c), seed + 1, 0.3f));
    p.act = act;
    return p;
}

// A convolution's output: makes a blocked buffer (padded when c is not a block multiple).
ValueId conv(Graph& g, ValueId x, int out, int kernel, uint32_t seed, int stride = 1) {
    auto w = random_conv(g.value(x).c, out, kernel, seed);
    w.stride = stride;
    return g.conv2d("conv" + std::to_string(seed), x, std::move(w), {});
}

TEST(DiffusionOps, MathApproximationsMatchLibm) {
    double exp_rel = 0, erf_abs = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.00731f) {
        const double want = std::exp(static_cast<double>(x));
        exp_rel = std::max(exp_rel, std::abs(engine::cpu::exp_approx(x) - want) / want);
    }
    for (float x = -6.0f; x <= 6.0f; x += 0.000377f) {
        erf_abs = std::max(erf_abs,
                           std::abs(engine::cpu::erf_approx(x) - std::erf(static_cast<double>(x))));
    }
    double silu_rel = 0, recip_rel = 0;
    for (float x = -80.0f; x <= 80.0f; x += 0.00317f) {
        const double want = x / (1.0 + std::exp(-static_cast<double>(x)));
        if (want != 0)
            silu_rel =
                std::max(silu_rel, std::abs(engine::cpu::silu_approx(x) - want) / std::abs(want));
    }
    for (float y = 1e-30f; y < 1e30f; y *= 1.0137f) {
        recip_rel = std::max(recip_rel,
                             std::abs(engine::cpu::recip_approx(y) * static_cast<double>(y) - 1.0));
    }
    std::printf(
        "exp max rel error %.3g, erf max abs error %.3g, silu max rel error %.3g, "
        "reciprocal max rel error %.3g\n",
        exp_rel, erf_abs, silu_rel, recip_rel);
    EXPECT_LE(silu_rel, 5e-7);
    EXPECT_LE(recip_rel, 3e-7);
    EXPECT_LE(exp_rel, 3e-7);
    EXPECT_LE(erf_abs, 5e-7);
    EXPECT_LE(std::abs(engine::cpu::silu_approx(-200.0f)), 1e-30f);
    EXPECT_TRUE(std::isfinite(engine::cpu::silu_approx(-1e30f)));
    EXPECT_EQ(engine::cpu::gelu_approx(0.0f), 0.0f);
}

TEST(DiffusionOps, GroupNormMatchesReference) {
    std::vector<Case> v;
    v.push_back({"group norm 8 groups of 3 + silu (nhwc input)",
                 {{5, 7, 24}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.group_norm("gn", x[0], norm_params(24, 8, Activation::SILU, 1));
                 }});
    v.push_back({"group norm 1 group, blocked padded (conv output 20 ch)",
                 {{9, 3, 5}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto a = conv(g, x[0], 20, 3, 2);
                     return g.group_norm("gn", a, norm_params(20, 1, Activation::NONE, 3));
                 }});
    v.push_back({"group norm 2 groups, thin, planar output read by a conv",
                 {{4, 5, 6}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto a = g.group_norm("gn", x[0], norm_params(6, 2, Activation::SILU, 4));
                     return conv(g, a, 7, 3, 5);
                 }});
    v.push_back({"group norm of block-aligned views at offsets",
                 {{6, 5, 3}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto buf = conv(g, x[0], 48, 1, 6);
                     auto a = g.group_norm("gn1", g.channels(buf, 16, 16),
                                           norm_params(16, 8, Activation::SILU, 7));
                     auto b = g.group_norm("gn2", g.channels(buf, 32, 16),
                                           norm_params(16, 2, Activation::NONE, 8));
                     return g.concat(a, b);
                 }});
    v.push_back({"group norm of an unaligned view (nhwc buffer)",
                 {{7, 3, 3}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto buf = conv(g, x[0], 40, 1, 9);
                     return g.group_norm("gn", g.channels(buf, 3, 30),
                                         norm_params(30, 5, Activation::SILU, 10));
                 }});
    v.push_back({"group norm 32 groups, 1 pixel",
                 {{1, 1, 64}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.group_norm("gn", x[0], norm_params(64, 32, Activation::NONE, 11));
                 }});
    v.push_back({"group norm of a large offset (mean 100, spread 1)",
                 {{33, 31, 32}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.group_norm("gn", x[0], norm_params(32, 4, Activation::SILU, 12));
                 },
                 2e-4,
                 1.0f,
                 100.0f});
    run_all(v);
}

TEST(DiffusionOps, LayerNormMatchesReference) {
    std::vector<Case> v;
    v.push_back({"layer norm 77 tokens x 40 (blocked, padded)",
                 {{77, 1, 40}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.layer_norm("ln", x[0], norm_params(40, 1, Activation::NONE, 1));
                 }});
    v.push_back(
        {"layer norm 1 token x 24", {{1, 1, 24}}, [](Graph& g, const std::vector<ValueId>& x) {
             return g.layer_norm("ln", x[0], norm_params(24, 1, Activation::NONE, 2));
         }});
    v.push_back({"layer norm thin 5 channels + silu, output planar",
                 {{5, 3, 5}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto a = g.layer_norm("ln", x[0], norm_params(5, 1, Activation::SILU, 3));
                     return conv(g, a, 4, 3, 4);
                 }});
    v.push_back({"layer norm of views (aligned and not)",
                 {{9, 1, 3}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto buf = conv(g, x[0], 64, 1, 5);
                     auto a = g.layer_norm("ln1", g.channels(buf, 32, 32),
                                           norm_params(32, 1, Activation::NONE, 6));
                     auto buf2 = conv(g, x[0], 50, 1, 7);
                     auto b = g.layer_norm("ln2", g.channels(buf2, 7, 32),
                                           norm_params(32, 1, Activation::NONE, 8));
                     return g.add(a, b);
                 }});
    v.push_back({"layer norm of a large offset",
                 {{13, 3, 48}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.layer_norm("ln", x[0], norm_params(48, 1, Activation::NONE, 9));
                 },
                 2e-4,
                 1.0f,
                 100.0f});
    run_all(v);
}

TEST(DiffusionOps, ElementwiseOpsMatchReference) {
    std::vector<Case> v;
    for (const Activation act : {Activation::RELU, Activation::SILU, Activation::GELU}) {
        const std::string name = act == Activation::RELU   ? "relu"
                                 : act == Activation::SILU ? "silu"
                                                           : "gelu";
        v.push_back({"activation " + name + " nhwc 20 ch and blocked padded 21 ch",
                     {{5, 7, 20}},
                     [act](Graph& g, const std::vector<ValueId>& x) {
                         auto a = g.activation(x[0], act);
                         auto b = g.activation(conv(g, x[0], 21, 1, 1), act);
                         return g.concat(a, b);
                     },
                     1e-5,
                     6.0f});
    }
    v.push_back({"activation silu of a thin view into a planar buffer",
                 {{4, 6, 3}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto a = g.activation(g.channels(x[0], 1, 2), Activation::SILU);
                     return conv(g, a, 5, 3, 2);
                 }});
    v.push_back({"geglu 2x20 nhwc, 2x32 blocked, 2x24 blocked-padded",
                 {{9, 1, 40}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto a = g.geglu(x[0]);                     // 20
                     auto b = g.geglu(conv(g, x[0], 64, 1, 3));  // 32, halves block-aligned
                     auto c = g.geglu(conv(g, x[0], 48, 1, 4));  // 24, gate half at channel 24
                     return g.concat(g.concat(a, b), c);
                 },
                 1e-5,
                 4.0f});
    v.push_back(
        {"geglu of a view at an offset", {{3, 5, 3}}, [](Graph& g, const std::vector<ValueId>& x) {
             auto buf = conv(g, x[0], 48, 1, 5);
             return g.geglu(g.channels(buf, 16, 32));
         }});
    v.push_back({"concat blocked + nhwc + planar-read output",
                 {{7, 5, 3}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto a = conv(g, x[0], 20, 3, 6);  // blocked, padded
                     auto c = g.concat(a, x[0]);        // 23
                     auto d = g.concat(x[0], x[0]);     // 6, thin: planar (a conv reads it)
                     return g.concat(c, conv(g, d, 16, 3, 7));
                 }});
    v.push_back({"add broadcast [1,1,c] (second input through a 1x1 conv) and scale",
                 {{5, 7, 24}, {1, 1, 10}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto t = conv(g, x[1], 24, 1, 8);  // [1, 1, 24] blocked
                     return g.add(x[0], t, 0.5f);       // nhwc + blocked broadcast
                 }});
    v.push_back({"add broadcast into blocked, planar and unaligned views",
                 {{6, 3, 5}, {1, 1, 40}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto a = conv(g, x[0], 40, 3, 10);  // blocked, padded
                     auto r1 = g.add(a, x[1]);
                     auto small = g.add(x[0], g.channels(x[1], 3, 5));  // thin, read by a conv
                     auto r2 = conv(g, small, 40, 3, 11);
                     return g.add(r1, r2);
                 }});
    run_all(v);
}

AttentionParams heads(int n, int c) {
    AttentionParams p;
    p.heads = n;
    p.scale = 1.0f / std::sqrt(static_cast<float>(c / n));
    return p;
}

// Self-attention as the UNet builds it: q, k and v channel views of one 1x1 convolution.
ValueId self_attention(Graph& g, ValueId x, int c, int n, uint32_t seed) {
    auto qkv = conv(g, x, 3 * c, 1, seed);
    return g.attention("attn", g.channels(qkv, 0, c), g.channels(qkv, c, c),
                       g.channels(qkv, 2 * c, c), heads(n, c));
}

ValueId cross_attention(Graph& g, ValueId x, ValueId ctx, int c, int n, uint32_t seed) {
    auto q = conv(g, x, c, 1, seed);
    auto kv = conv(g, ctx, 2 * c, 1, seed + 1);
    return g.attention("attn", q, g.channels(kv, 0, c), g.channels(kv, c, c), heads(n, c));
}

TEST(DiffusionOps, AttentionMatchesReference) {
    std::vector<Case> v;
    for (const int n : {1, 2, 4}) {
        v.push_back({"self attention 8x8 tokens, 32 ch, heads " + std::to_string(n),
                     {{8, 8, 32}},
                     [n](Graph& g, const std::vector<ValueId>& x) {
                         return self_attention(g, x[0], 32, n, 1);
                     }});
    }
    v.push_back({"self attention 77 tokens, 40 ch (nhwc views), 2 heads",
                 {{77, 1, 16}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return self_attention(g, x[0], 40, 2, 2);
                 }});
    v.push_back(
        {"self attention 1 token", {{1, 1, 16}}, [](Graph& g, const std::vector<ValueId>& x) {
             return self_attention(g, x[0], 16, 2, 3);
         }});
    v.push_back({"self attention 5x7 tokens, 8 ch (thin views), 2 heads, planar out",
                 {{5, 7, 3}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return conv(g, self_attention(g, x[0], 8, 2, 4), 3, 3, 5);
                 }});
    for (const int tokens : {1, 4, 77}) {
        v.push_back({"cross attention 9x7 queries, " + std::to_string(tokens) +
                         " context tokens of 24, 48 ch, 4 heads",
                     {{9, 7, 16}, {tokens, 1, 24}},
                     [](Graph& g, const std::vector<ValueId>& x) {
                         return cross_attention(g, x[0], x[1], 48, 4, 6);
                     }});
    }
    v.push_back({"cross attention on raw inputs (nhwc), 3 heads of 5",
                 {{4, 5, 15}, {6, 1, 15}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.attention("attn", x[0], x[1], x[1], heads(3, 15));
                 },
                 1e-5,
                 3.0f});
    v.push_back({"cross attention, 4100 context tokens (the sgemm kernel), 2 heads",
                 {{3, 5, 16}, {4100, 1, 32}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.attention("attn", x[0], g.channels(x[1], 0, 16),
                                        g.channels(x[1], 16, 16), heads(2, 16));
                 },
                 1e-5,
                 2.0f});
    v.push_back({"self attention 33x31 tokens (tiles with a tail), 32 ch, 1 head",
                 {{33, 31, 8}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return self_attention(g, x[0], 32, 1, 7);
                 }});
    run_all(v);
}

TEST(DiffusionOps, StridedAndActivatedConvolutionsMatchReference) {
    std::vector<Case> v;
    for (const Shape s : {Shape{9, 7, 16}, Shape{8, 10, 16}, Shape{1, 1, 16}, Shape{2, 3, 16}}) {
        v.push_back({"conv3x3 stride 2 on " + std::to_string(s.h) + "x" + std::to_string(s.w),
                     {s},
                     [](Graph& g, const std::vector<ValueId>& x) {
                         auto a = conv(g, x[0], 24, 3, 1, 2);  // blocked -> blocked, padded
                         auto b = conv(g, x[0], 5, 3, 2, 2);   // thin output
                         auto c = conv(g, x[0], 16, 1, 3, 2);  // 1x1 stride 2
                         return g.concat(g.concat(a, b), c);
                     },
                     1e-4});
    }
    v.push_back({"conv3x3 stride 2, thin planar input, odd size",
                 {{11, 9, 3}},
                 [](Graph& g, const std::vector<ValueId>& x) { return conv(g, x[0], 32, 3, 4, 2); },
                 1e-4});
    for (const Activation act : {Activation::SILU, Activation::GELU}) {
        v.push_back({std::string("conv3x3 epilogue ") +
                         (act == Activation::SILU ? "silu" : "gelu") + " with residual",
                     {{9, 10, 32}},
                     [act](Graph& g, const std::vector<ValueId>& x) {
                         Epilogue e;
                         e.act = act;
                         auto a = g.conv2d("a", x[0], random_conv(32, 32, 3, 5), e);
                         Epilogue r;
                         r.act = act;
                         r.adds.push_back({a, 0.5f});
                         auto b = g.conv2d("b", a, random_conv(32, 32, 3, 6), r);
                         Epilogue r2;
                         r2.act = act;
                         r2.adds.push_back({a, 0.5f});
                         r2.adds.push_back({b, 0.25f});
                         return g.conv2d("c", b, random_conv(32, 32, 3, 7), r2);
                     },
                     1e-4,
                     2.0f});
    }
    run_all(v);
}

// groupnorm -> 1x1 conv -> layernorm -> self attention -> add -> layernorm -> cross
// attention -> add -> layernorm -> 1x1 conv -> geglu -> 1x1 conv -> add, two inputs.
ValueId transformer_block(Graph& g, ValueId x, ValueId ctx) {
    const int c = g.value(x).c;
    auto h = g.group_norm("gn", x, norm_params(c, 8, Activation::NONE, 1));
    h = conv(g, h, c, 1, 2);
    auto n = g.layer_norm("ln1", h, norm_params(c, 1, Activation::NONE, 3));
    h = g.add(conv(g, self_attention(g, n, c, 2, 4), c, 1, 5), h);
    n = g.layer_norm("ln2", h, norm_params(c, 1, Activation::NONE, 6));
    h = g.add(conv(g, cross_attention(g, n, ctx, c, 2, 7), c, 1, 9), h);
    n = g.layer_norm("ln3", h, norm_params(c, 1, Activation::NONE, 10));
    auto f = g.geglu(conv(g, n, 8 * c, 1, 11));
    h = g.add(conv(g, f, c, 1, 12), h);
    return g.add(h, x);
}

TEST(DiffusionOps, OpsReadPlanarBuffers) {
    // A thin buffer that a convolution reads is planar NCHW: every op must read it too.
    std::vector<Case> v;
    v.push_back({"norms, activations, geglu, attention, add and concat of a planar input",
                 {{5, 7, 6}, {1, 1, 6}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto a = conv(g, x[0], 6, 3, 1);  // makes x[0] planar
                     auto b = g.group_norm("gn", x[0], norm_params(6, 2, Activation::SILU, 2));
                     auto c = g.layer_norm("ln", x[0], norm_params(6, 1, Activation::NONE, 3));
                     auto d = g.geglu(x[0]);
                     auto e = g.attention("attn", x[0], x[0], x[0], heads(2, 6));
                     auto f = g.add(x[0], x[1], 0.5f);
                     auto h = g.activation(x[0], Activation::GELU);
                     return g.concat(g.concat(g.concat(a, b), g.concat(c, d)),
                                     g.concat(g.concat(e, f), h));
                 }});
    run_all(v);
}

TEST(DiffusionOps, TransformerBlockMatchesReference) {
    std::vector<Case> v;
    v.push_back(
        {"transformer block 8x8x32, 7 context tokens of 24",
         {{8, 8, 32}, {7, 1, 24}},
         [](Graph& g, const std::vector<ValueId>& x) { return transformer_block(g, x[0], x[1]); },
         1e-4});
    v.push_back(
        {"transformer block 5x3x24, 1 context token of 12",
         {{5, 3, 24}, {1, 1, 12}},
         [](Graph& g, const std::vector<ValueId>& x) { return transformer_block(g, x[0], x[1]); },
         1e-4});
    run_all(v);
}

TEST(DiffusionOps, RunBatchEqualsSingleRuns) {
    Graph g;
    const ValueId x = g.input(6, 5, 32);
    const ValueId ctx = g.input(4, 1, 16);
    g.output(transformer_block(g, x, ctx));
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({2});
    auto plan = backend->compile(g, *context);
    constexpr int kBatch = 3;
    const auto inputs = make_inputs(g, kBatch, 1.0f, 0.0f, 21);
    const size_t out = output_floats(g);
    std::vector<float> batched(out * kBatch + 8, 777.0f);
    const float* both[2] = {inputs[0].data(), inputs[1].data()};
    plan->run_batch(both, batched.data(), kBatch, {});
    for (size_t i = out * kBatch; i < batched.size(); ++i)
        ASSERT_EQ(batched[i], 777.0f);
    const size_t nx = 6 * 5 * 32, nc = 4 * 16;
    for (int n = 0; n < kBatch; ++n) {
        std::vector<float> single(out);
        const float* sample[2] = {inputs[0].data() + nx * n, inputs[1].data() + nc * n};
        plan->run_batch(sample, single.data(), 1, {});
        for (size_t i = 0; i < out; ++i)
            ASSERT_EQ(batched[out * n + i], single[i]) << "sample " << n << " float " << i;
        const std::vector<float> rx(sample[0], sample[0] + nx), rc(sample[1], sample[1] + nc);
        const auto want = run_reference(g, std::vector<std::vector<float>>{rx, rc});
        EXPECT_LE(compare(single, want).nmse, 1e-9) << "sample " << n;
    }
    // The wrong number of inputs is refused.
    const float* one[1] = {inputs[0].data()};
    EXPECT_THROW(plan->run_batch(one, batched.data(), 1, {}), core::Error);
}

TEST(DiffusionOps, TokenLinearLayersUseOnednnJitKernels) {
    // 1x1 convolutions on [L, 1, d] token sequences are the transformer's linear layers.
    Graph g;
    const ValueId x = g.input(1024, 1, 32);
    const ValueId ctx = g.input(77, 1, 64);
    g.output(transformer_block(g, x, ctx));
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({2});
    auto plan = backend->compile(g, *context);
    const std::string described = plan->describe();
    std::printf("%s", described.c_str());
    EXPECT_EQ(described.find("ref"), std::string::npos) << described;
    EXPECT_NE(described.find("lane attention"), std::string::npos) << described;
}

}  // namespace
}  // namespace kiln::test
