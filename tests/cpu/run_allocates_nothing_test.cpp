// "Executing a plan allocates nothing": operator new is counted while plans run. kiln's own
// ops allocate nothing at all. oneDNN's dnnl_primitive_execute builds a small argument map on
// every call (a few hash-map nodes, measured ~7 per convolution in oneDNN 2.6); its buffers
// come from the plan's user scratchpad, so what it allocates must not grow with the image.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "engine/cpu/cpu_backend.h"
#include "tests/ops/graph_cases.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
std::atomic<long> g_bytes{0};
}  // namespace

// The whole unaligned family is replaced, so that every allocation this binary makes meets
// its own deallocation: with only some replaced, a sanitizer's own nothrow new (used by
// std::stable_sort's temporary buffer) would meet this free-based delete.
void* operator new(std::size_t size) {
    if (g_counting.load(std::memory_order_relaxed)) {
        g_allocations.fetch_add(1);
        g_bytes.fetch_add(static_cast<long>(size));
    }
    if (void* p = std::malloc(size ? size : 1))
        return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    return ::operator new(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    try {
        return ::operator new(size);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
    return ::operator new(size, tag);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}

namespace kiln::test {
namespace {

struct Counted {
    long allocations;
    long bytes;
};

Counted count_second_run(const engine::Graph& g, size_t in_size, size_t out_size) {
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({2});
    auto plan = backend->compile(g, *context);
    std::vector<float> in(in_size, 0.25f), out(out_size);
    plan->run(in.data(), out.data(), {});  // first run: lazy initialisation anywhere
    g_allocations = 0;
    g_bytes = 0;
    g_counting = true;
    plan->run(in.data(), out.data(), {});
    g_counting = false;
    return {g_allocations.load(), g_bytes.load()};
}

TEST(CpuPlan, OpsOtherThanConvolutionAllocateNothing) {
    engine::Graph g;
    auto x = g.input(12, 10, 3);
    auto a = g.upsample_bilinear(g.upsample_nearest(x, 2), 2);                   // NHWC, 3 channels
    auto b = g.pixel_unshuffle(g.pixel_shuffle(g.pixel_unshuffle(a, 2), 2), 2);  // 12 channels
    auto c = g.resize_bicubic(g.add(b, b, 0.5f), 9, 7);
    g.output(c);
    const Counted n = count_second_run(g, 12 * 10 * 3, 9 * 7 * 12);
    EXPECT_EQ(n.allocations, 0);
}

engine::NormParams norm(int c, engine::Activation act) {
    engine::NormParams p;
    p.groups = 4;
    p.gamma = std::make_shared<const std::vector<float>>(random_vector(c, 1));
    p.beta = std::make_shared<const std::vector<float>>(random_vector(c, 2));
    p.act = act;
    return p;
}

Counted count_second_run_batch(const engine::Graph& g, int batch) {
    auto backend = engine::cpu::make_cpu_backend();
    auto context = backend->create_context({2});
    auto plan = backend->compile(g, *context);
    std::vector<std::vector<float>> inputs;
    std::vector<const float*> pointers;
    for (const engine::ValueId id : g.input_values()) {
        const auto& v = g.value(id);
        inputs.emplace_back(static_cast<size_t>(v.h) * v.w * v.c * batch, 0.25f);
        pointers.push_back(inputs.back().data());
    }
    const auto& o = g.value(g.output_value());
    std::vector<float> out(static_cast<size_t>(o.h) * o.w * o.c * batch);
    plan->run_batch(pointers, out.data(), batch, {});  // first run: lazy initialisation
    g_allocations = 0;
    g_bytes = 0;
    g_counting = true;
    plan->run_batch(pointers, out.data(), batch, {});
    g_counting = false;
    return {g_allocations.load(), g_bytes.load()};
}

TEST(CpuPlan, DiffusionOpsAllocateNothing) {
    // Norms, activations, GEGLU, concat, broadcast add and attention (its sgemm calls
    // included), in blocked (48 channels) and NHWC (views at odd offsets) layouts.
    engine::Graph g;
    auto x = g.input(12, 10, 48);
    auto t = g.input(1, 1, 24);
    auto ctx = g.input(5, 1, 24);
    auto a = g.group_norm("gn", x, norm(48, engine::Activation::SILU));
    auto b = g.layer_norm("ln", a, norm(48, engine::Activation::NONE));
    auto c = g.geglu(g.activation(b, engine::Activation::GELU));  // 24
    auto d = g.add(c, t);
    auto self = g.attention("self", g.channels(x, 0, 16), g.channels(x, 16, 16),
                            g.channels(x, 32, 16), {2, 0.25f});
    auto cross = g.attention("cross", g.channels(d, 1, 12), g.channels(ctx, 3, 12),
                             g.channels(ctx, 12, 12), {3, 0.5f});
    g.output(g.concat(g.concat(self, cross), g.activation(d, engine::Activation::SILU)));
    const Counted n = count_second_run_batch(g, 2);
    EXPECT_EQ(n.allocations, 0);
}

engine::Graph conv_graph(int h, int w) {
    engine::Graph g;
    auto x = g.input(h, w, 3);
    engine::Epilogue prelu;
    prelu.act = engine::Activation::PRELU;
    prelu.prelu_slope = random_vector(16, 3, 0.3f);
    auto a = g.conv2d("a", x, random_conv(3, 16, 3, 1), prelu);
    engine::Epilogue res;
    res.adds.push_back({a, 0.2f});
    res.adds.push_back({a, 0.5f});
    auto b = g.conv2d("b", a, random_conv(16, 16, 3, 2), res);
    g.output(g.conv2d("c", b, random_conv(16, 3, 3, 3), {}));
    return g;
}

TEST(CpuPlan, ConvolutionAllocationsDoNotGrowWithTheImage) {
    const Counted small = count_second_run(conv_graph(8, 8), 8 * 8 * 3, 8 * 8 * 3);
    const Counted large = count_second_run(conv_graph(96, 80), 96 * 80 * 3, 96 * 80 * 3);
    std::printf("3 convolutions: %ld allocations / %ld bytes (8x8), %ld / %ld (96x80)\n",
                small.allocations, small.bytes, large.allocations, large.bytes);
    EXPECT_EQ(small.bytes, large.bytes);
    EXPECT_LE(large.bytes, 3 * 4096);  // bookkeeping, never a buffer
}

}  // namespace
}  // namespace kiln::test
