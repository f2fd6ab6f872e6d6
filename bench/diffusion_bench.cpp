// kiln_diffusion_bench: time of one UNet evaluation at a batch size, and of whole 30-step
// guided images, for a generation model folder on the CPU backend. Prints one JSON line;
// bench/run_diffusion_bench.py runs it beside the PyTorch peer.
//
// usage: kiln_diffusion_bench MODEL_DIR --batch B --threads T [--runs N] [--steps S]
//        [--profile 1]   (per-op times of one evaluation, summed by op name, on stderr)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/diffusion/diffusion_model.h"
#include "engine/diffusion/generation.h"
#include "engine/diffusion/philox_noise.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL_DIR --batch B --threads T [--runs N] [--steps S]\n",
                     argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    int batch = 1, threads = 1, runs = 20, steps = 30, profile = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        const int v = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--batch"))
            batch = v;
        else if (!std::strcmp(argv[i], "--threads"))
            threads = v;
        else if (!std::strcmp(argv[i], "--runs"))
            runs = v;
        else if (!std::strcmp(argv[i], "--steps"))
            steps = v;
        else if (!std::strcmp(argv[i], "--profile"))
            profile = v;
    }
    try {
        using namespace kiln;
        const auto model = engine::diffusion::load_diffusion_model(dir);
        auto backend = engine::cpu::make_cpu_backend({});
        auto context = backend->create_context({threads});
        const auto& config = model->unet->config();
        const int side = config.sample_size;
        engine::diffusion::UNetRunner runner(*model->unet, *backend, *context, side, side,
                                             model->encoder->tokens());
        const size_t image = static_cast<size_t>(side) * side * config.in_channels;
        std::vector<float> x(image * static_cast<size_t>(batch)), eps(x.size());
        for (size_t j = 0; j < x.size(); ++j)
            x[j] = engine::diffusion::philox_normal(1, 0, 0, j);
        const std::vector<float> one = model->encoder->encode("bag");
        std::vector<float> ctx;
        for (int b = 0; b < batch; ++b)
            ctx.insert(ctx.end(), one.begin(), one.end());

        runner.predict(x.data(), batch, 500.0f, ctx.data(), eps.data(), {});  // warm-up
        if (profile) {
            std::vector<std::pair<std::string, double>> times;
            engine::RunControl control;
            control.op_times = &times;
            runner.predict(x.data(), batch, 500.0f, ctx.data(), eps.data(), control);
            // Sum by the op's last name component ("...attn1.to_qkv" -> "to_qkv").
            std::map<std::string, std::pair<double, int>> by_kind;
            double total = 0;
            for (const auto& [name, t] : times) {
                const size_t dot = name.rfind('.');
                auto& slot = by_kind[dot == std::string::npos ? name : name.substr(dot + 1)];
                slot.first += t;
                slot.second += 1;
                total += t;
            }
            std::vector<std::pair<double, std::string>> order;
            for (const auto& [k, v] : by_kind)
                order.emplace_back(v.first, k);
            std::sort(order.rbegin(), order.rend());
            std::fprintf(stderr, "one evaluation, batch %d: %.3f ms in %zu ops\n", batch,
                         total * 1e3, times.size());
            for (const auto& [t, k] : order) {
                std::fprintf(stderr, "  %-24s %8.3f ms %5.1f%%  x%d\n", k.c_str(), t * 1e3,
                             100 * t / total, by_kind[k].second);
            }
        }
        std::vector<double> evals;
        for (int r = 0; r < runs; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            runner.predict(x.data(), batch, 500.0f, ctx.data(), eps.data(), {});
            evals.push_back(seconds_since(t0));
        }
        // Whole images: `batch` images with guidance (one UNet batch of 2 * batch per step).
        engine::diffusion::GenerateParams p;
        p.steps = steps;
        p.count = batch;
        p.guidance = 3.0f;
        p.seed = 7;
        const auto t0 = std::chrono::steady_clock::now();
        engine::diffusion::generate(*model, *backend, *context, "bag", p, {});
        const double generation = seconds_since(t0);
        std::printf(
            "{\"engine\": \"kiln\", \"batch\": %d, \"threads\": %d, \"runs\": %d, "
            "\"eval_median_s\": %.6f, \"eval_min_s\": %.6f, \"steps\": %d, "
            "\"image_s\": %.6f, \"plan_peak_bytes\": %zu}\n",
            batch, threads, runs, median(evals), *std::min_element(evals.begin(), evals.end()),
            steps, generation / batch, runner.peak_bytes());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kiln_diffusion_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
