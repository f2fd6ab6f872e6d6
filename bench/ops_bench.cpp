// Google Benchmark of the CPU backend's ops on the shapes the real models use: one plan per
// case, built once, timed over runs.
// `kiln_ops_bench --benchmark_filter=conv` etc.
#include <benchmark/benchmark.h>

#include <random>

#include "engine/cpu/cpu_backend.h"

namespace {

using kiln::engine::Activation;
using kiln::engine::ConvWeights;
using kiln::engine::Epilogue;
using kiln::engine::Graph;
using kiln::engine::ValueId;

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

// Runs graph `build(g, input)` on an h x w x c input with `threads` threads.
template <typename Build>
void run_plan(benchmark::State& state, int h, int w, int c, Build build, double flops = 0) {
    Graph g;
    const ValueId x = g.input(h, w, c);
    g.output(build(g, x));
    const auto& out = g.value(g.output_value());
    auto backend = kiln::engine::cpu::make_cpu_backend();
    auto context = backend->create_context({static_cast<int>(state.range(0))});
    auto plan = backend->compile(g, *context);
    std::vector<float> in(static_cast<size_t>(h) * w * c, 0.5f);
    std::vector<float> result(static_cast<size_t>(out.h) * out.w * out.c);
    plan->run(in.data(), result.data(), {});
    // The op itself is reported apart from the plan's copies from and to the caller's NHWC
    // arrays (op_ms, and GFLOP/s from it); the benchmark's time includes the copies.
    std::vector<std::pair<std::string, double>> times;
    kiln::engine::RunControl control;
    control.op_times = &times;
    double op_seconds = 0;
    for (auto _ : state) {
        times.clear();
        plan->run(in.data(), result.data(), control);
        for (const auto& [name, t] : times) {
            if (name != "input" && name != "output")
                op_seconds += t;
        }
    }
    const double per_run = op_seconds / static_cast<double>(state.iterations());
    state.counters["op_ms"] = per_run * 1e3;
    if (flops > 0)
        state.counters["GFLOP/s"] = flops / per_run * 1e-9;
    state.SetLabel(plan->describe().substr(0, plan->describe().find('\n')));
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

}  // namespace

BENCHMARK(conv_dense_160_32)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(conv_srvgg_64_64)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(conv_residual_192_64)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(upsample_nearest_64)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(pixel_shuffle_48)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(resize_bicubic_half)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
