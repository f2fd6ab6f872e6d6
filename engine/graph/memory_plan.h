// Assigns every buffer of a graph an offset in one arena so that buffers whose lifetimes
// overlap never overlap in memory. The arena size is the plan's activation peak.
#pragma once

#include <cstddef>
#include <vector>

#include "engine/graph/graph.h"

namespace kiln::engine {

struct BufferLifetime {
    int first_op = -1;  // first op that touches the buffer
    int last_op = -1;   // last op that touches it
};

// Lifetimes from op order: a buffer lives from the first op that reads or writes any view of
// it to the last one.
std::vector<BufferLifetime> buffer_lifetimes(const Graph& graph);

struct MemoryPlan {
    std::vector<size_t> offsets;  // per buffer; unused buffers get 0 and size 0
    size_t arena_bytes = 0;
};

// sizes[b] is the byte size of buffer b in the backend's layout (0 = not in the arena).
MemoryPlan plan_memory(const std::vector<BufferLifetime>& lifetimes,
                       const std::vector<size_t>& sizes,
                       size_t alignment = 64);

}  // namespace kiln::engine
