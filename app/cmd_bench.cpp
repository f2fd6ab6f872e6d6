// kiln bench -m MODEL --size S: times one plan on an S x S input and prints one JSON line.
// --trace FILE: one more run recorded as a Chrome trace (job, forward, one event per op).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "app/commands.h"
#include "app/engine_setup.h"
#include "engine/trace.h"

namespace kiln::app {

namespace {

struct BenchArgs {
    EngineOptions engine;
    std::string model;
    int size = 64;
    int repeat = 5;
    int warmup = 1;
    bool profile = false;
    bool describe = false;
    std::string trace;  // Chrome trace JSON path; empty: none
};

int run_bench(const BenchArgs& args) {
    LoadedEngine loaded = load_engine(args.engine, args.model);
    const auto compile_start = std::chrono::steady_clock::now();
    const engine::Graph graph = loaded.model->build_graph(args.size, args.size);
    auto plan = loaded.backend->compile(graph, *loaded.context);
    const double compile_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - compile_start).count();
    if (args.describe)
        std::cerr << plan->describe() << "\n";
    const size_t n = static_cast<size_t>(args.size) * static_cast<size_t>(args.size) * 3;
    std::vector<float> input(n);
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(0.0f, 1.0f);
    for (float& v : input)
        v = dist(rng);
    const int s = loaded.model->scale();
    std::vector<float> output(n * static_cast<size_t>(s * s));

    for (int i = 0; i < args.warmup; ++i)
        plan->run(input.data(), output.data(), {});
    std::vector<double> runs;
    for (int i = 0; i < args.repeat; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        plan->run(input.data(), output.data(), {});
        runs.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (args.profile) {
        // One more run with per-op timing, summed by op name prefix, to stderr.
        std::vector<std::pair<std::string, double>> times;
        engine::RunControl control;
        control.op_times = &times;
        plan->run(input.data(), output.data(), control);
        for (const auto& [name, seconds] : times) {
            std::cerr << "op " << name << " " << seconds * 1e3 << " ms\n";
        }
    }
    if (!args.trace.empty()) {
        // One more run, traced: the job range around the forward range and its ops.
        engine::Trace trace;
        {
            engine::TraceRange job(&trace, "bench " + args.model, "job");
            job.arg("size", std::to_string(args.size));
            job.arg("backend", loaded.backend->name());
            engine::RunControl control;
            control.trace = &trace;
            engine::run_traced(*plan, input.data(), output.data(), control,
                               "forward " + args.model);
        }
        trace.write_file(args.trace);
        std::cerr << "wrote trace " << args.trace << " (" << trace.events().size() << " events)\n";
    }
    std::vector<double> sorted = runs;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted.empty() ? 0.0
                          : sorted.size() % 2
                              ? sorted[sorted.size() / 2]
                              : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const double flops = graph.conv_flops();
    nlohmann::json result = {
        {"engine", "kiln"},
        {"model", args.model},
        {"arch", loaded.model->arch()},
        {"size", args.size},
        {"threads", loaded.context->threads()},
        {"median_s", median},
        {"min_s", sorted.empty() ? 0.0 : sorted.front()},
        {"runs", runs},
        {"compile_s", compile_s},
        {"gflops", median > 0 ? flops / median / 1e9 : 0.0},
        {"plan_peak_bytes", plan->peak_bytes()},
        {"peak_rss_bytes", static_cast<int64_t>(usage.ru_maxrss) * 1024},
    };
    std::cout << result.dump() << std::endl;
    return 0;
}

}  // namespace

Runner register_bench(CLI::App& app) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand("bench", "time a model on a square input (JSON out)");
    cmd->add_option("-m,--model", args->model, "model name")->required();
    cmd->add_option("--size", args->size, "input height and width")->check(CLI::PositiveNumber);
    cmd->add_option("--repeat", args->repeat, "timed runs")->check(CLI::PositiveNumber);
    cmd->add_option("--warmup", args->warmup, "untimed runs first")->check(CLI::NonNegativeNumber);
    cmd->add_flag("--profile", args->profile, "print each op's time of one extra run");
    cmd->add_flag("--describe", args->describe,
                  "print the plan's per-op choices (algorithm, layout, graph replay) to stderr");
    cmd->add_option("--trace", args->trace,
                    "write a Chrome trace of one extra run (job, forward, ops) to this file");
    add_engine_options(*cmd, args->engine);
    return [cmd, args]() { return cmd->parsed() ? run_bench(*args) : -1; };
}

}  // namespace kiln::app
