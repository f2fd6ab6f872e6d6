#include "engine/graph/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace kiln::engine {

std::vector<BufferLifetime> buffer_lifetimes(const Graph& graph) {
    std::vector<BufferLifetime> life(graph.buffers().size());
    auto touch = [&](ValueId v, int op_index) {
        BufferLifetime& l = life[static_cast<size_t>(graph.value(v).buffer)];
        if (l.first_op < 0)
            l.first_op = op_index;
        l.last_op = std::max(l.last_op, op_index);
    };
    const auto& ops = graph.ops();
    for (size_t i = 0; i < ops.size(); ++i) {
        const int index = static_cast<int>(i);
        for (ValueId in : ops[i].inputs)
            touch(in, index);
        touch(ops[i].output, index);
    }
    return life;
}

MemoryPlan plan_memory(const std::vector<BufferLifetime>& lifetimes,
                       const std::vector<size_t>& sizes,
                       size_t alignment) {
    const size_t n = lifetimes.size();
    MemoryPlan plan;
    plan.offsets.assign(n, 0);
    auto aligned = [&](size_t bytes) { return (bytes + alignment - 1) / alignment * alignment; };

    // Largest first, each at the lowest offset free during its whole lifetime.
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return sizes[a] > sizes[b]; });

    struct Placed {
        size_t offset, bytes;
        BufferLifetime life;
    };
    std::vector<Placed> placed;
    for (size_t b : order) {
        if (sizes[b] == 0 || lifetimes[b].first_op < 0)
            continue;
        const size_t bytes = aligned(sizes[b]);
        std::vector<std::pair<size_t, size_t>> busy;  // [begin, end) of conflicting buffers
        for (const Placed& p : placed) {
            const bool overlap =
                p.life.first_op <= lifetimes[b].last_op && lifetimes[b].first_op <= p.life.last_op;
            if (overlap)
                busy.emplace_back(p.offset, p.offset + p.bytes);
        }
        std::sort(busy.begin(), busy.end());
        size_t offset = 0;
        for (const auto& [begin, end] : busy) {
            if (offset + bytes <= begin)
                break;
            offset = std::max(offset, end);
        }
        plan.offsets[b] = offset;
        plan.arena_bytes = std::max(plan.arena_bytes, offset + bytes);
        placed.push_back({offset, bytes, lifetimes[b]});
    }
    return plan;
}

}  // namespace kiln::engine
