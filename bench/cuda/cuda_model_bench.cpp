// Real upscaling models on the CUDA backend (fp16 NHWC, cuDNN convolutions): one plan per
// (model, input size), built once, then timed per run (the run includes the fp32 input and
// output copies of the Plan interface). Reports achieved TFLOP/s of the convolutions beside
// the device's dense fp16 tensor peak. Models come from $KILN_MODELS_DIR (default ./models);
// a missing model or device skips its case with the reason.
//   kiln_cuda_model_bench --benchmark_filter=x4plus
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/models/model.h"
#include "weights/registry.h"

namespace {

std::string models_dir() {
    if (const char* env = std::getenv("KILN_MODELS_DIR"); env && *env)
        return env;
    return KILN_DEFAULT_MODELS_DIR;
}

// Dense fp16 tensor-core peak (FLOP/s) of the known data-centre parts; 0 when unknown.
double fp16_peak(const cudaDeviceProp& p) {
    const std::string name = p.name;
    if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos)
        return name.find("PCIe") != std::string::npos ? 756e12 : 989e12;
    if (name.find("A100") != std::string::npos)
        return 312e12;
    return 0.0;
}

void bench_model(benchmark::State& state, const std::string& model_name, int h, int w) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        state.SkipWithError("no CUDA device");
        return;
    }
    try {
        kiln::weights::ModelRegistry registry(models_dir());
        auto model = kiln::engine::Model::create(registry.load(model_name));
        const kiln::engine::Graph graph = model->build_graph(h, w);
        auto backend = kiln::engine::cuda::make_cuda_backend();
        auto context = backend->create_context({});
        auto plan = backend->compile(graph, *context);
        std::vector<float> input(static_cast<size_t>(h) * w * 3, 0.5f);
        const auto& out = graph.value(graph.output_value());
        std::vector<float> output(static_cast<size_t>(out.h) * out.w * out.c);
        plan->run(input.data(), output.data(), {});  // warm-up
        for (auto _ : state)
            plan->run(input.data(), output.data(), {});
        cudaDeviceProp props{};
        cudaGetDeviceProperties(&props, 0);
        const double flops = graph.conv_flops();
        state.counters["TFLOP/s"] = benchmark::Counter(
            flops * static_cast<double>(state.iterations()) * 1e-12, benchmark::Counter::kIsRate);
        state.counters["peak_TFLOP/s"] = fp16_peak(props) * 1e-12;
        state.counters["peak_MiB"] = static_cast<double>(plan->peak_bytes()) / (1 << 20);
        state.SetLabel(std::string(props.name));
    } catch (const kiln::core::Error& e) {
        state.SkipWithError(e.what());
    }
}

void register_all() {
    struct Size {
        const char* name;
        int h, w;
    };
    const Size sizes[] = {{"256", 256, 256}, {"720p", 720, 1280}};
    for (const char* model : {"realesrgan-x4plus", "realesr-animevideov3-x4"}) {
        for (const Size& s : sizes) {
            benchmark::RegisterBenchmark(
                (std::string(model) + "/" + s.name).c_str(),
                [model, s](benchmark::State& st) { bench_model(st, model, s.h, s.w); })
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
