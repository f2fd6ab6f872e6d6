// Google Benchmark of the CPU backend's ops on the shapes the real models use: one plan per
// case, built once, timed over runs.
// `kiln_ops_bench --benchmark_filter=conv` etc.
#include <benchmark/benchmark.h>

#include <array>
#include <cmath>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace {

using kiln::engine::Activation;
using kiln::engine::AttentionParams;
using kiln::engine::ConvWeights;
using kiln::engine::Epilogue;
using kiln::engine::Graph;
using kiln::engine::NormParams;
using kiln::engine::PixelGroups;
using kiln::engine::ValueId;
using kiln::engine::WindowAttentionParams;

ConvWeights conv(int in, int out, int kernel = 3) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
    ConvWeights w;
    w.in_channels = in;
    w.out_channels = out;
    w.kernel = kernel;
    std::vector<float> v(static_cast<size_t>(in) * out * kernel * kernel);
    for (float& x : v)
        x = dist(rng);
    w.weight = std::make_shared<const std::vector<float>>(std::move(v));
    w.bias = std::make_shared<const std::vector<float>>(static_cast<size_t>(out), 0.01f);
    return w;
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Times a plan of g with state.range(0) threads on random inputs.
void time_graph(benchmark::State& state, const Graph& g, double flops) {
    const auto& out = g.value(g.output_value());
    auto backend = kiln::engine::cpu::make_cpu_backend();
    auto context = backend->create_context({static_cast<int>(state.range(0))});
    auto plan = backend->compile(g, *context);
    std::vector<std::vector<float>> ins;
    std::vector<const float*> pointers;
    std::mt19937 rng(2);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (const ValueId id : g.input_values()) {
        const auto& v = g.value(id);
        ins.emplace_back(static_cast<size_t>(v.h) * v.w * v.c);
        for (float& x : ins.back())
            x = dist(rng);
        pointers.push_back(ins.back().data());
    }
    std::vector<float> result(static_cast<size_t>(out.h) * out.w * out.c);
    plan->run_batch(pointers, result.data(), 1, {});
    // The op itself is reported apart from the plan's copies from and to the caller's NHWC
    // arrays (op_ms, and GFLOP/s from it); the benchmark's time includes the copies.
    std::vector<std::pair<std::string, double>> times;
    kiln::engine::RunControl control;
    control.op_times = &times;
    double op_seconds = 0, run_seconds = 0, cpu_seconds = 0;
    for (auto _ : state) {
        times.clear();
        const double cpu0 = thread_cpu_seconds();
        plan->run_batch(pointers, result.data(), 1, control);
        cpu_seconds += thread_cpu_seconds() - cpu0;
        for (const auto& [name, t] : times) {
            run_seconds += t;
            if (name.rfind("input", 0) != 0 && name != "output")
                op_seconds += t;
        }
    }
    const double per_run = op_seconds / static_cast<double>(state.iterations());
    state.counters["op_ms"] = per_run * 1e3;
    state.counters["op_us"] = per_run * 1e6;
    // On a shared machine: the op's share of the calling thread's CPU time (meaningful for
    // one thread, where the op runs on the calling thread), immune to time spent descheduled.
    if (state.range(0) == 1 && run_seconds > 0) {
        state.counters["op_cpu_us"] = cpu_seconds * (op_seconds / run_seconds) /
                                      static_cast<double>(state.iterations()) * 1e6;
    }
    if (flops > 0)
        state.counters["GFLOP/s"] = flops / per_run * 1e-9;
    state.SetLabel(plan->describe().substr(0, plan->describe().find('\n')));
}

// Runs graph `build(g, input)` on an h x w x c input with `threads` threads.
template <typename Build>
void run_plan(benchmark::State& state, int h, int w, int c, Build build, double flops = 0) {
    Graph g;
    const ValueId x = g.input(h, w, c);
    g.output(build(g, x));
    time_graph(state, g, flops);
}

Epilogue act(Activation a) {
    Epilogue e;
    e.act = a;
    e.alpha = 0.2f;
    if (a == Activation::PRELU)
        e.prelu_slope.assign(64, 0.1f);
    return e;
}

// RRDB dense-block convolution 160 -> 32 + LeakyReLU at a 84x84 tile (a 64x64 input).
void conv_dense_160_32(benchmark::State& state) {
    run_plan(
        state, 84, 84, 160,
        [](Graph& g, ValueId x) {
            return g.conv2d("c", x, conv(160, 32), act(Activation::LEAKY_RELU));
        },
        2.0 * 84 * 84 * 32 * 160 * 9);
}
// SRVGG body convolution 64 -> 64 + PReLU.
void conv_srvgg_64_64(benchmark::State& state) {
    run_plan(
        state, 84, 84, 64,
        [](Graph& g, ValueId x) { return g.conv2d("c", x, conv(64, 64), act(Activation::PRELU)); },
        2.0 * 84 * 84 * 64 * 64 * 9);
}
// RRDB conv5 192 -> 64 with the two residual adds of the third dense block.
void conv_residual_192_64(benchmark::State& state) {
    run_plan(
        state, 84, 84, 192,
        [](Graph& g, ValueId x) {
            ValueId a = g.channels(x, 0, 64);
            Epilogue e;
            e.adds.push_back({a, 0.2f});
            e.adds.push_back({a, 0.2f});
            return g.conv2d("c", x, conv(192, 64), e);
        },
        2.0 * 84 * 84 * 64 * 192 * 9);
}
void upsample_nearest_64(benchmark::State& state) {
    run_plan(state, 168, 168, 64, [](Graph& g, ValueId x) { return g.upsample_nearest(x, 2); });
}
void pixel_shuffle_48(benchmark::State& state) {
    run_plan(state, 256, 256, 48, [](Graph& g, ValueId x) { return g.pixel_shuffle(x, 4); });
}
void resize_bicubic_half(benchmark::State& state) {
    run_plan(state, 512, 512, 3, [](Graph& g, ValueId x) { return g.resize_bicubic(x, 256, 256); });
}

NormParams norm(int c, int groups, Activation a) {
    NormParams p;
    p.groups = groups;
    p.gamma = std::make_shared<const std::vector<float>>(static_cast<size_t>(c), 1.1f);
    p.beta = std::make_shared<const std::vector<float>>(static_cast<size_t>(c), 0.1f);
    p.act = a;
    return p;
}

// The diffusion UNet's ops at the small UNet's shapes (32 and 64 channels at 32x32 and
// 16x16, 32 groups, one head of 32) and SD 1.x's first level (320 channels, 10 groups of
// 32... as in diffusers: 32 groups of 10; 8 heads of 40).
void group_norm_silu_32x32x32(benchmark::State& state) {
    run_plan(state, 32, 32, 32, [](Graph& g, ValueId x) {
        return g.group_norm("gn", x, norm(32, 32, Activation::SILU));
    });
}
void group_norm_16x16x64(benchmark::State& state) {
    run_plan(state, 16, 16, 64, [](Graph& g, ValueId x) {
        return g.group_norm("gn", x, norm(64, 32, Activation::NONE));
    });
}
void group_norm_silu_64x64x320(benchmark::State& state) {
    run_plan(state, 64, 64, 320, [](Graph& g, ValueId x) {
        return g.group_norm("gn", x, norm(320, 32, Activation::SILU));
    });
}
void layer_norm_1024x32(benchmark::State& state) {
    run_plan(state, 1024, 1, 32, [](Graph& g, ValueId x) {
        return g.layer_norm("ln", x, norm(32, 1, Activation::NONE));
    });
}
void layer_norm_256x64(benchmark::State& state) {
    run_plan(state, 256, 1, 64, [](Graph& g, ValueId x) {
        return g.layer_norm("ln", x, norm(64, 1, Activation::NONE));
    });
}
void layer_norm_4096x320(benchmark::State& state) {
    run_plan(state, 4096, 1, 320, [](Graph& g, ValueId x) {
        return g.layer_norm("ln", x, norm(320, 1, Activation::NONE));
    });
}
void geglu_1024x256(benchmark::State& state) {
    run_plan(state, 1024, 1, 256, [](Graph& g, ValueId x) { return g.geglu(x); });
}
void silu_32x32x32(benchmark::State& state) {
    run_plan(state, 32, 32, 32,
             [](Graph& g, ValueId x) { return g.activation(x, Activation::SILU); });
}

AttentionParams heads(int n, int c) {
    AttentionParams p;
    p.heads = n;
    p.scale = 1.0f / std::sqrt(static_cast<float>(c / n));
    return p;
}

// Self-attention on q, k, v channel views of one [h, w, 3c] buffer (the UNet's to_qkv).
void self_attention(benchmark::State& state, int h, int w, int c, int n) {
    const double tokens = static_cast<double>(h) * w;
    run_plan(
        state, h, w, 3 * c,
        [c, n](Graph& g, ValueId x) {
            return g.attention("attn", g.channels(x, 0, c), g.channels(x, c, c),
                               g.channels(x, 2 * c, c), heads(n, c));
        },
        4.0 * tokens * tokens * c);
}
// Cross-attention: h*w queries of c, keys and values from `tokens` context tokens.
void cross_attention(benchmark::State& state, int h, int w, int c, int tokens, int n) {
    Graph g;
    const ValueId q = g.input(h, w, c);
    const ValueId kv = g.input(tokens, 1, 2 * c);
    g.output(g.attention("attn", q, g.channels(kv, 0, c), g.channels(kv, c, c), heads(n, c)));
    time_graph(state, g, 4.0 * h * w * tokens * c);
}
void attention_self_32x32x32_h1(benchmark::State& state) {
    self_attention(state, 32, 32, 32, 1);
}
void attention_self_16x16x32_h1(benchmark::State& state) {
    self_attention(state, 16, 16, 32, 1);
}
void attention_self_16x16x64_h1(benchmark::State& state) {
    self_attention(state, 16, 16, 64, 1);
}
void attention_self_8x8x64_h1(benchmark::State& state) {
    self_attention(state, 8, 8, 64, 1);
}
void attention_self_32x32x320_h8(benchmark::State& state) {
    self_attention(state, 32, 32, 320, 8);
}
void attention_cross_32x32x32_t4(benchmark::State& state) {
    cross_attention(state, 32, 32, 32, 4, 1);
}
void attention_cross_16x16x64_t4(benchmark::State& state) {
    cross_attention(state, 16, 16, 64, 4, 1);
}
void attention_cross_32x32x32_t77(benchmark::State& state) {
    cross_attention(state, 32, 32, 32, 77, 1);
}
// OmniSR's attentions on a 128x128 map of 64 channels in 4 heads, windows of 8: block and
// grid window attention with a position bias, block and grid channel attention.
WindowAttentionParams omnisr_window(PixelGroups groups) {
    WindowAttentionParams p;
    p.window = 8;
    p.groups = groups;
    p.heads = 4;
    p.scale = 0.25f;
    p.bias = std::make_shared<const std::vector<float>>(4 * 64 * 64, 0.1f);
    p.temperature = std::make_shared<const std::vector<float>>(4, 1.5f);
    return p;
}
void window_attention_128x128x64(benchmark::State& state, PixelGroups groups) {
    run_plan(
        state, 128, 128, 192,
        [groups](Graph& g, ValueId x) {
            return g.window_attention("wa", x, omnisr_window(groups));
        },
        4.0 * 128 * 128 * 64 * 64);
}
void channel_attention_128x128x64(benchmark::State& state, PixelGroups groups) {
    run_plan(
        state, 128, 128, 192,
        [groups](Graph& g, ValueId x) {
            return g.channel_attention("ca", x, omnisr_window(groups));
        },
        4.0 * 128 * 128 * 64 * 16);
}
void window_attention_blocks(benchmark::State& state) {
    window_attention_128x128x64(state, PixelGroups::BLOCKS);
}
void window_attention_grid(benchmark::State& state) {
    window_attention_128x128x64(state, PixelGroups::GRID);
}
void channel_attention_blocks(benchmark::State& state) {
    channel_attention_128x128x64(state, PixelGroups::BLOCKS);
}
void channel_attention_grid(benchmark::State& state) {
    channel_attention_128x128x64(state, PixelGroups::GRID);
}
// A transformer's linear layer: a 1x1 convolution on 1024 tokens, 32 -> 256 (ff proj).
void linear_1024_32_256(benchmark::State& state) {
    run_plan(
        state, 1024, 1, 32,
        [](Graph& g, ValueId x) { return g.conv2d("c", x, conv(32, 256, 1), {}); },
        2.0 * 1024 * 32 * 256);
}
// The UNet's downsampler: 3x3 stride 2.
void conv_stride2_32x32x64(benchmark::State& state) {
    run_plan(
        state, 32, 32, 64,
        [](Graph& g, ValueId x) {
            ConvWeights w = conv(64, 64);
            w.stride = 2;
            return g.conv2d("c", x, w, {});
        },
        2.0 * 16 * 16 * 64 * 64 * 9);
}

}  // namespace

BENCHMARK(group_norm_silu_32x32x32)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(group_norm_16x16x64)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(group_norm_silu_64x64x320)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(layer_norm_1024x32)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(layer_norm_256x64)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(layer_norm_4096x320)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(geglu_1024x256)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(silu_32x32x32)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(attention_self_32x32x32_h1)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(attention_self_16x16x32_h1)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(attention_self_16x16x64_h1)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(attention_self_8x8x64_h1)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(attention_self_32x32x320_h8)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(attention_cross_32x32x32_t4)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(attention_cross_16x16x64_t4)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(attention_cross_32x32x32_t77)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(window_attention_blocks)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(window_attention_grid)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(channel_attention_blocks)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(channel_attention_grid)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(linear_1024_32_256)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(conv_stride2_32x32x64)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(conv_dense_160_32)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(conv_srvgg_64_64)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(conv_residual_192_64)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(upsample_nearest_64)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(pixel_shuffle_48)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(resize_bicubic_half)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
