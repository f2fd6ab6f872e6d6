// The fused attention kernel alone (kernels::attention) at Stable Diffusion 1.x shapes: self
// attention over 64x64, 32x32, 16x16 and 8x8 latents (d = 40, 80, 160, 160; 8 heads) and
// cross attention to CLIP's 77 tokens. Device buffers of random fp16, CUDA-event timing of
// back-to-back launches (no host copies), achieved TFLOP/s of q k^T and the weighted sum of v
// (4 * queries * keys * channels); the kernel runs on CUDA cores in fp32 (no tensor cores),
// so compare with the device's fp32 peak. Skips without a device.
//   kiln_cuda_attention_bench --benchmark_filter=self
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace {

uint16_t* upload_random(size_t n, uint32_t seed) {
    std::vector<uint16_t> host(n);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (uint16_t& h : host)
        h = kiln::core::float_to_half(dist(rng));
    void* p = nullptr;
    KILN_CUDA_CHECK(cudaMalloc(&p, n * sizeof(uint16_t)));
    KILN_CUDA_CHECK(cudaMemcpy(p, host.data(), n * sizeof(uint16_t), cudaMemcpyHostToDevice));
    return static_cast<uint16_t*>(p);
}

void bench_attention(benchmark::State& state, int queries, int keys, int c, int heads) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        state.SkipWithError("no CUDA device");
        return;
    }
    try {
        const size_t nq = static_cast<size_t>(queries) * c, nk = static_cast<size_t>(keys) * c;
        uint16_t* q = upload_random(nq, 1);
        uint16_t* k = upload_random(nk, 2);
        uint16_t* v = upload_random(nk, 3);
        uint16_t* o = upload_random(nq, 4);
        cudaStream_t stream = nullptr;
        KILN_CUDA_CHECK(cudaStreamCreate(&stream));
        cudaEvent_t start = nullptr, stop = nullptr;
        KILN_CUDA_CHECK(cudaEventCreate(&start));
        KILN_CUDA_CHECK(cudaEventCreate(&stop));
        const kiln::kernels::AttentionArgs args{heads,
                                                1.0f / std::sqrt(static_cast<float>(c / heads))};
        const auto launch = [&] {
            kiln::kernels::attention({q, {queries, 1, c, c, 0}}, {k, {keys, 1, c, c, 0}},
                                     {v, {keys, 1, c, c, 0}}, {o, {queries, 1, c, c, 0}}, args,
                                     stream);
        };
        launch();  // warm-up
        KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
        for (auto _ : state) {
            constexpr int kLaunches = 10;
            KILN_CUDA_CHECK(cudaEventRecord(start, stream));
            for (int i = 0; i < kLaunches; ++i)
                launch();
            KILN_CUDA_CHECK(cudaEventRecord(stop, stream));
            KILN_CUDA_CHECK(cudaEventSynchronize(stop));
            float ms = 0.0f;
            KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
            state.SetIterationTime(ms * 1e-3 / kLaunches);
        }
        const double flops = 4.0 * queries * static_cast<double>(keys) * c;
        state.counters["TFLOP/s"] = benchmark::Counter(
            flops * static_cast<double>(state.iterations()) * 1e-12, benchmark::Counter::kIsRate);
        cudaDeviceProp props{};
        KILN_CUDA_CHECK(cudaGetDeviceProperties(&props, 0));
        state.SetLabel(props.name);
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
        cudaStreamDestroy(stream);
        for (uint16_t* p : {q, k, v, o})
            cudaFree(p);
    } catch (const kiln::core::Error& e) {
        state.SkipWithError(e.what());
    }
}

}  // namespace

// SD 1.x: 320/640/1280/1280 channels, 8 heads; self attention at 64², 32², 16², 8² latents.
BENCHMARK_CAPTURE(bench_attention, self_4096_c320_d40, 4096, 4096, 320, 8)->UseManualTime();
BENCHMARK_CAPTURE(bench_attention, self_1024_c640_d80, 1024, 1024, 640, 8)->UseManualTime();
BENCHMARK_CAPTURE(bench_attention, self_256_c1280_d160, 256, 256, 1280, 8)->UseManualTime();
BENCHMARK_CAPTURE(bench_attention, self_64_c1280_d160, 64, 64, 1280, 8)->UseManualTime();
BENCHMARK_CAPTURE(bench_attention, cross_4096x77_c320_d40, 4096, 77, 320, 8)->UseManualTime();
BENCHMARK_CAPTURE(bench_attention, self_4096_c512_d64, 4096, 4096, 512, 8)->UseManualTime();

BENCHMARK_MAIN();
