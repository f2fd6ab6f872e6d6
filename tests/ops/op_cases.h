// The op-case table: every OpKind's test cases, listed once. Each case builds a small
// engine::Graph on random inputs and states its bounds; the CPU suite runs every case against
// the double-accumulating reference interpreter (tests/cpu/op_cases_test.cpp), the CUDA suite
// runs every case with a CUDA bound against the CPU backend (tests/cuda/op_cases_test.cpp).
//
// Adding a case: a row in the family's file (cases_<family>.cpp); a new op family gets its own
// file and one line in op_cases.cpp. OpCases.EveryOpKindHasACase fails until a new OpKind has
// a row, OpCases.EveryOpKindHasACudaCase until one of them has a CUDA bound.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/graph/graph.h"

namespace kiln::test {

struct Shape {
    int h = 0, w = 0, c = 0;
};

// CPU backend against the reference (fp32 against double).
struct CpuBound {
    double max_nmse = 1e-9;
    // With ConvAlgorithm::AUTO oneDNN may pick Winograd F(4,3), which rounds differently from
    // direct summation; only the cases that need it widen this.
    double auto_max_nmse = 1e-9;
    // max |got - want| <= max_rel_abs * max(1, max |want|); 0: not checked.
    double max_rel_abs = 0;
};

// CUDA backend against the CPU backend: fp16 storage, fp32 math.
struct CudaBound {
    double max_nmse = 1e-6;
    double max_abs = 2e-3;
};

using BuildOp = std::function<engine::ValueId(engine::Graph&, const std::vector<engine::ValueId>&)>;

struct OpCase {
    std::string name;
    std::vector<Shape> inputs;  // graph inputs, in declaration order
    BuildOp build;              // returns the output value
    CpuBound cpu;
    std::optional<CudaBound> cuda = std::nullopt;  // absent: not measured on a GPU yet
    int batch = 1;                                 // samples per run (Plan::run_batch)
    uint32_t seed = 7;  // input i is uniform in [-scale, scale] + offset, seed + i
    float input_scale = 1.0f;
    float input_offset = 0.0f;
};

// The table, grouped by op family; built once.
const std::vector<OpCase>& op_cases();
// The rows as gtest parameters (every row, or those with a CUDA bound): pointers into
// op_cases(), printed as the row's name so test listings stay stable when rows are added.
std::vector<const OpCase*> op_case_params(bool cuda_only);
void PrintTo(const OpCase* tc, std::ostream* out);

// A case's graph and its inputs: inputs[i] holds `batch` consecutive samples of input i.
struct BuiltCase {
    engine::Graph graph;
    std::vector<std::vector<float>> inputs;
    size_t output_floats = 0;  // per sample
};
BuiltCase build_case(const OpCase& tc);

// Sample n of every input, as the reference interpreter takes them.
std::vector<std::vector<float>> sample_inputs(const BuiltCase& b, int batch, int n);

// The op kinds a case's graph holds.
std::set<engine::OpKind> op_kinds_of(const OpCase& tc);

// The case name with every character outside [A-Za-z0-9] made '_': a gtest parameter name.
std::string op_case_test_name(const OpCase& tc);

}  // namespace kiln::test
