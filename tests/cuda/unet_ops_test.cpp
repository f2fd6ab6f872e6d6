// The diffusion UNet's ops on the CUDA backend against the CPU backend (the reference), with
// several graph inputs and batches: GroupNorm (+SiLU), LayerNorm, activations (graph op and
// convolution epilogue), GEGLU, concat, broadcast add, fused attention (self and cross, head
// dims 8..160, key counts around the 32-key tile), strided convolutions, linear layers on
// token sequences (cuBLASLt), and run_batch.
//
// core::Error metric per case: NMSE (sum (a-b)^2 / sum b^2) and max |a-b| over the whole output,
// inputs uniform in [-1, 1]. Bounds (fp16 storage, fp32 math):
//   elementwise (activation, GEGLU, concat, broadcast add): NMSE <= 1e-6, max abs <= 2e-3;
//   GroupNorm / LayerNorm (outputs of unit variance, up to ~3):  NMSE <= 1e-5, max abs <= 1e-2;
//   attention (fp16 q, k, v; fp32 scores and accumulation): NMSE <= 1e-4, max abs <= 5e-3;
//   strided convolution and linear: as the other convolutions, NMSE <= 2e-5, max abs <= 2e-2.
#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <cmath>
#include <functional>
#include <memory>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "tests/cpu/graph_cases.h"
#include "tests/cuda/cuda_device.h"

namespace kiln::test {
namespace {

using engine::Activation;
using engine::Graph;
using engine::ValueId;

using Shape = std::array<int, 3>;  // h, w, c

struct UnetCase {
    std::string name;
    std::vector<Shape> inputs;
    std::function<ValueId(Graph&, const std::vector<ValueId>&)> build;
    double max_nmse = 1e-6;
    double max_abs = 2e-3;
    int batch = 1;
};

void PrintTo(const UnetCase& c, std::ostream* out) {
    *out << c.name;
}

constexpr double kNormNmse = 1e-5, kNormAbs = 1e-2;
constexpr double kAttnNmse = 1e-4, kAttnAbs = 5e-3;
constexpr double kConvNmse = 2e-5, kConvAbs = 2e-2;

engine::NormParams norm(int c, int groups, Activation act, uint32_t seed) {
    engine::NormParams p;
    p.groups = groups;
    p.eps = 1e-5f;
    p.act = act;
    auto gamma = random_vector(static_cast<size_t>(c), seed, 0.5f);
    for (float& g : gamma)
        g += 1.0f;
    p.gamma = std::make_shared<const std::vector<float>>(std::move(gamma));
    p.beta = std::make_shared<const std::vector<float>>(
        random_vector(static_cast<size_t>(c), seed + 1, 0.2f));
    return p;
}

engine::ConvWeights strided(int in, int out, int k, uint32_t seed) {
    engine::ConvWeights w = random_conv(in, out, k, seed);
    w.stride = 2;
    return w;
}

std::vector<UnetCase> cases() {
    std::vector<UnetCase> v;
    // GroupNorm: SD's 32 groups (2 channels per group at c 64), odd channels per group.
    v.push_back({"group_norm 32 groups c64 silu",
                 {{8, 8, 64}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.group_norm("gn", x[0], norm(64, 32, Activation::SILU, 1));
                 },
                 kNormNmse,
                 kNormAbs});
    v.push_back({"group_norm 3 groups c15 (scalar)",
                 {{5, 7, 15}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.group_norm("gn", x[0], norm(15, 3, Activation::NONE, 2));
                 },
                 kNormNmse,
                 kNormAbs});
    v.push_back({"group_norm 32 groups c320 16x16",
                 {{16, 16, 320}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.group_norm("gn", x[0], norm(320, 32, Activation::NONE, 3));
                 },
                 kNormNmse,
                 kNormAbs});
    // LayerNorm on token sequences [L, 1, d] and on images.
    for (const int c : {8, 40, 64, 320}) {
        v.push_back({"layer_norm c" + std::to_string(c),
                     {{77, 1, c}},
                     [c](Graph& g, const std::vector<ValueId>& x) {
                         return g.layer_norm("ln", x[0], norm(c, 1, Activation::NONE, 4));
                     },
                     kNormNmse,
                     kNormAbs});
    }
    v.push_back({"layer_norm silu 6x5 c24",
                 {{6, 5, 24}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.layer_norm("ln", x[0], norm(24, 1, Activation::SILU, 5));
                 },
                 kNormNmse,
                 kNormAbs});
    // Activations as graph ops (128-bit and scalar paths) and as convolution epilogues.
    for (const int c : {3, 64}) {
        for (const Activation a : {Activation::RELU, Activation::SILU, Activation::GELU}) {
            const std::string an = a == Activation::RELU   ? "relu"
                                   : a == Activation::SILU ? "silu"
                                                           : "gelu";
            v.push_back(
                {"activation " + an + " c" + std::to_string(c),
                 {{7, 9, c}},
                 [a](Graph& g, const std::vector<ValueId>& x) { return g.activation(x[0], a); }});
        }
    }
    for (const Activation a : {Activation::SILU, Activation::GELU}) {
        v.push_back({std::string("conv epilogue ") + (a == Activation::SILU ? "silu" : "gelu"),
                     {{8, 8, 16}},
                     [a](Graph& g, const std::vector<ValueId>& x) {
                         engine::Epilogue e;
                         e.act = a;
                         return g.conv2d("c", x[0], random_conv(16, 32, 3, 6), e);
                     },
                     kConvNmse,
                     kConvAbs});
    }
    // GEGLU: SD's feed-forward (2 x 4 d) on small d, and an odd half.
    for (const int c : {16, 80, 6}) {
        v.push_back({"geglu c" + std::to_string(c),
                     {{64, 1, c}},
                     [](Graph& g, const std::vector<ValueId>& x) { return g.geglu(x[0]); }});
    }
    // Concat: UNet skip connections (aligned and odd channel counts).
    v.push_back({"concat 32 | 16",
                 {{6, 6, 32}, {6, 6, 16}},
                 [](Graph& g, const std::vector<ValueId>& x) { return g.concat(x[0], x[1]); }});
    v.push_back({"concat 3 | 5",
                 {{5, 4, 3}, {5, 4, 5}},
                 [](Graph& g, const std::vector<ValueId>& x) { return g.concat(x[0], x[1]); }});
    // Broadcast add: a timestep embedding [1, 1, c] added to every pixel.
    for (const int c : {64, 12}) {
        v.push_back(
            {"broadcast add c" + std::to_string(c),
             {{7, 5, c}, {1, 1, c}},
             [](Graph& g, const std::vector<ValueId>& x) { return g.add(x[0], x[1], 1.0f); }});
    }
    // Attention: self (q = k = v = x) at head dims 8, 40, 64, 80, 160 and 3 (odd).
    struct Heads {
        int c, heads, tokens_h, tokens_w;
    };
    for (const Heads hd : {Heads{64, 8, 8, 8}, Heads{80, 2, 6, 7}, Heads{64, 1, 9, 9},
                           Heads{160, 2, 5, 5}, Heads{160, 1, 4, 9}, Heads{9, 3, 3, 11}}) {
        const int d = hd.c / hd.heads;
        v.push_back({"self attention c" + std::to_string(hd.c) + " heads " +
                         std::to_string(hd.heads) + " d" + std::to_string(d) + " tokens " +
                         std::to_string(hd.tokens_h * hd.tokens_w),
                     {{hd.tokens_h, hd.tokens_w, hd.c}},
                     [hd, d](Graph& g, const std::vector<ValueId>& x) {
                         return g.attention("attn", x[0], x[0], x[0],
                                            {hd.heads, 1.0f / std::sqrt(static_cast<float>(d))});
                     },
                     kAttnNmse,
                     kAttnAbs});
    }
    // Cross attention: q from the image, k and v from a context sequence of 4, 33 or 77 tokens;
    // q, k, v as channel slices of one projection buffer for self attention.
    for (const int keys : {4, 33, 77}) {
        v.push_back(
            {"cross attention " + std::to_string(keys) + " keys d40",
             {{8, 6, 80}, {keys, 1, 80}},
             [](Graph& g, const std::vector<ValueId>& x) {
                 return g.attention("xattn", x[0], x[1], x[1], {2, 1.0f / std::sqrt(40.0f)});
             },
             kAttnNmse,
             kAttnAbs});
    }
    v.push_back({"attention on slices of one qkv buffer",
                 {{6, 6, 3 * 32}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto q = g.channels(x[0], 0, 32);
                     auto k = g.channels(x[0], 32, 32);
                     auto vv = g.channels(x[0], 64, 32);
                     return g.attention("attn", q, k, vv, {4, 1.0f / std::sqrt(8.0f)});
                 },
                 kAttnNmse,
                 kAttnAbs});
    // Strided convolutions (UNet downsamplers): even and odd sizes.
    v.push_back({"conv3x3 stride 2 8x8",
                 {{8, 8, 16}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.conv2d("down", x[0], strided(16, 16, 3, 7), {});
                 },
                 kConvNmse,
                 kConvAbs});
    v.push_back({"conv3x3 stride 2 9x7 odd",
                 {{9, 7, 8}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.conv2d("down", x[0], strided(8, 24, 3, 8), {});
                 },
                 kConvNmse,
                 kConvAbs});
    // Linear layers (1x1 convolutions on [L, 1, c] token sequences): cuBLASLt with the bias
    // fused, with the epilogue kernel after it, without bias, and on channel slices (odd
    // leading dimensions: cuBLASLt's alignment preferences, or the cuDNN fallback).
    v.push_back({"linear 77x64 -> 128 bias",
                 {{77, 1, 64}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     return g.conv2d("to_q", x[0], random_conv(64, 128, 1, 14), {});
                 },
                 kConvNmse,
                 kConvAbs});
    v.push_back({"linear relu (fused) and gelu (epilogue)",
                 {{33, 1, 40}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     engine::Epilogue relu, gelu;
                     relu.act = Activation::RELU;
                     gelu.act = Activation::GELU;
                     auto a = g.conv2d("a", x[0], random_conv(40, 80, 1, 15), relu);
                     return g.conv2d("b", a, random_conv(80, 24, 1, 16), gelu);
                 },
                 2 * kConvNmse,
                 kConvAbs});
    v.push_back({"linear no bias + residual",
                 {{16, 1, 32}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     engine::Epilogue e;
                     e.adds.push_back({x[0], 1.0f});
                     return g.conv2d("proj", x[0], random_conv(32, 32, 1, 17, false), e);
                 },
                 kConvNmse,
                 kConvAbs});
    v.push_back({"linear on channel slices (odd offsets)",
                 {{9, 1, 27}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto in = g.channels(x[0], 3, 21);
                     auto buf = g.buffer(9, 1, 37);
                     g.conv2d("l", in, random_conv(21, 13, 1, 18), {}, g.channels(buf, 5, 13));
                     return g.channels(buf, 5, 13);
                 },
                 kConvNmse,
                 kConvAbs});
    // A small transformer block on two inputs, run as a batch of 3 samples.
    v.push_back({"batch 3: norm, self+cross attention, geglu, residuals",
                 {{4, 4, 32}, {7, 1, 32}},
                 [](Graph& g, const std::vector<ValueId>& x) {
                     auto h = g.group_norm("gn", x[0], norm(32, 8, Activation::SILU, 9));
                     auto a = g.attention("self", g.layer_norm("ln1", h, norm(32, 1, {}, 10)), h, h,
                                          {4, 1.0f / std::sqrt(8.0f)});
                     h = g.add(a, h);
                     auto c = g.attention("cross", h, x[1], x[1], {4, 1.0f / std::sqrt(8.0f)});
                     h = g.add(c, h);
                     auto ff = g.conv2d("ff_in", g.layer_norm("ln2", h, norm(32, 1, {}, 11)),
                                        random_conv(32, 128, 1, 12), {});
                     auto gl = g.geglu(ff);
                     auto out = g.conv2d("ff_out", gl, random_conv(64, 32, 1, 13), {});
                     return g.concat(g.add(out, h), x[0]);
                 },
                 5 * kAttnNmse,
                 4 * kAttnAbs,
                 3});
    return v;
}

struct Built {
    Graph graph;
    std::vector<std::vector<float>> inputs;  // batch samples each
    size_t output_floats = 0;                // per sample
};

Built build(const UnetCase& tc) {
    Built b;
    std::vector<ValueId> ids;
    uint32_t seed = 100;
    for (const Shape& s : tc.inputs) {
        ids.push_back(b.graph.input(s[0], s[1], s[2]));
        b.inputs.push_back(
            random_vector(static_cast<size_t>(s[0]) * s[1] * s[2] * tc.batch, seed++));
    }
    b.graph.output(tc.build(b.graph, ids));
    const engine::Value& out = b.graph.value(b.graph.output_value());
    b.output_floats = static_cast<size_t>(out.h) * out.w * out.c;
    return b;
}

std::vector<float> run(engine::Backend& backend, const Built& b, int batch, std::string* describe) {
    auto ctx = backend.create_context({2});
    auto plan = backend.compile(b.graph, *ctx);
    std::vector<const float*> inputs;
    for (const auto& in : b.inputs)
        inputs.push_back(in.data());
    std::vector<float> out(b.output_floats * static_cast<size_t>(batch) + 16, 12345.0f);
    plan->run_batch(inputs, out.data(), batch, {});
    for (size_t i = out.size() - 16; i < out.size(); ++i)
        EXPECT_EQ(out[i], 12345.0f) << "write past the output";
    out.resize(out.size() - 16);
    if (describe)
        *describe = plan->describe();
    return out;
}

class UnetOpsCudaVsCpu : public ::testing::TestWithParam<UnetCase> {};

TEST_P(UnetOpsCudaVsCpu, MatchesTheCpuBackend) {
    KILN_REQUIRE_CUDA();
    const UnetCase& tc = GetParam();
    const Built b = build(tc);
    auto cpu = engine::cpu::make_cpu_backend();
    const std::vector<float> want = run(*cpu, b, tc.batch, nullptr);
    auto cuda = engine::cuda::make_cuda_backend();
    std::string describe;
    const std::vector<float> got = run(*cuda, b, tc.batch, &describe);
    const Comparison cmp = compare(got, want);
    EXPECT_TRUE(cmp.finite) << tc.name;
    EXPECT_LE(cmp.nmse, tc.max_nmse) << tc.name << "\n" << describe;
    EXPECT_LE(cmp.max_abs, tc.max_abs) << tc.name;
    EXPECT_NE(describe.find("execution: cuda graph"), std::string::npos) << describe;
    // Each sample of a batch equals that sample run alone (no state between samples).
    if (tc.batch > 1) {
        for (int n = 0; n < tc.batch; ++n) {
            Built one = build(tc);
            for (size_t i = 0; i < one.inputs.size(); ++i) {
                const size_t per = one.inputs[i].size() / static_cast<size_t>(tc.batch);
                one.inputs[i] = std::vector<float>(
                    b.inputs[i].begin() + static_cast<std::ptrdiff_t>(per * n),
                    b.inputs[i].begin() + static_cast<std::ptrdiff_t>(per * (n + 1)));
            }
            const std::vector<float> alone = run(*cuda, one, 1, nullptr);
            const std::vector<float> slice(
                got.begin() + static_cast<std::ptrdiff_t>(b.output_floats * n),
                got.begin() + static_cast<std::ptrdiff_t>(b.output_floats * (n + 1)));
            EXPECT_EQ(alone, slice) << "sample " << n;
        }
    }
}

TEST_P(UnetOpsCudaVsCpu, PeakBytesWithinTheEstimate) {
    KILN_REQUIRE_CUDA();
    const Built b = build(GetParam());
    auto cuda = engine::cuda::make_cuda_backend();
    auto ctx = cuda->create_context({});
    auto plan = cuda->compile(b.graph, *ctx);
    EXPECT_LE(plan->peak_bytes(), cuda->estimate_peak_bytes(b.graph));
}

INSTANTIATE_TEST_SUITE_P(Unet,
                         UnetOpsCudaVsCpu,
                         ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<UnetCase>& param) {
                             std::string n;
                             for (char ch : param.param.name)
                                 n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                             return n + "_" + std::to_string(param.index);
                         });

// Runs without a GPU: every case's graph is valid and runs on the CPU backend (the reference
// exists), so a GPU run has only the CUDA side left to prove.
TEST(UnetOpsCases, BuildAndRunOnTheCpuBackend) {
    auto cpu = engine::cpu::make_cpu_backend();
    for (const UnetCase& tc : cases()) {
        const Built b = build(tc);
        const std::vector<float> out = run(*cpu, b, tc.batch, nullptr);
        EXPECT_TRUE(compare(out, out).finite) << tc.name;
    }
}

TEST(UnetOpsCases, WrongInputCountIsRejected) {
    KILN_REQUIRE_CUDA();
    Graph g;
    const ValueId a = g.input(2, 2, 8);
    const ValueId b = g.input(2, 2, 8);
    g.output(g.concat(a, b));
    auto cuda = engine::cuda::make_cuda_backend();
    auto ctx = cuda->create_context({});
    auto plan = cuda->compile(g, *ctx);
    std::vector<float> in(32), out(64);
    const float* one[1] = {in.data()};
    EXPECT_THROW(plan->run_batch(one, out.data(), 1, {}), core::Error);
}

}  // namespace
}  // namespace kiln::test
