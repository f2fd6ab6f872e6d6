// Every case of the op-case table (tests/ops/op_cases.h) on the CPU backend against the naive
// double-accumulating reference interpreter, in both convolution algorithms and with channel
// blocks 16 and 8 (so every buffer layout the layout chooser gives is met), with a sentinel
// past the output; and the table's own checks: every OpKind has a case, on both suites.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "engine/cpu/cpu_backend.h"
#include "tests/cpu/reference_graph.h"
#include "tests/ops/graph_cases.h"
#include "tests/ops/op_cases.h"

namespace kiln::test {
namespace {

using engine::OpKind;
using engine::cpu::ConvAlgorithm;

void run_on_cpu(const OpCase& tc, ConvAlgorithm algorithm, int block) {
    const BuiltCase b = build_case(tc);
    std::vector<float> want;
    for (int n = 0; n < tc.batch; ++n) {
        const std::vector<float> sample = run_reference(b.graph, sample_inputs(b, tc.batch, n));
        want.insert(want.end(), sample.begin(), sample.end());
    }

    engine::cpu::CpuBackendOptions options;
    options.conv_algorithm = algorithm;
    options.block = block;
    auto backend = engine::cpu::make_cpu_backend(options);
    auto context = backend->create_context({2});
    auto plan = backend->compile(b.graph, *context);
    std::vector<const float*> pointers;
    for (const auto& in : b.inputs)
        pointers.push_back(in.data());
    // Sentinel past the end catches stray writes.
    std::vector<float> got(want.size() + 16, 12345.0f);
    plan->run_batch(pointers, got.data(), tc.batch, {});
    for (size_t i = want.size(); i < got.size(); ++i)
        ASSERT_EQ(got[i], 12345.0f) << tc.name;
    got.resize(want.size());

    const Comparison cmp = compare(got, want);
    double magnitude = 1.0;
    for (const float v : want)
        magnitude = std::max(magnitude, static_cast<double>(std::abs(v)));
    const std::string where = tc.name + " block " + std::to_string(block) +
                              (algorithm == ConvAlgorithm::AUTO ? " auto" : " direct");
    EXPECT_TRUE(cmp.finite) << where;
    const double max_nmse =
        algorithm == ConvAlgorithm::AUTO ? tc.cpu.auto_max_nmse : tc.cpu.max_nmse;
    EXPECT_LE(cmp.nmse, max_nmse) << where << " max_abs " << cmp.max_abs << "\n"
                                  << plan->describe();
    if (tc.cpu.max_rel_abs > 0) {
        EXPECT_LE(cmp.max_abs, tc.cpu.max_rel_abs * magnitude)
            << where << " nmse " << cmp.nmse << "\n"
            << plan->describe();
    }
    EXPECT_LE(plan->peak_bytes(), backend->estimate_peak_bytes(b.graph)) << where;
    if (std::getenv("KILN_TEST_VERBOSE")) {
        std::printf("%-70s max_abs %.3g (of %.3g) nmse %.3g\n", where.c_str(), cmp.max_abs,
                    magnitude, cmp.nmse);
    }
}

class CpuVsReference : public ::testing::TestWithParam<const OpCase*> {};

TEST_P(CpuVsReference, MatchesTheReference) {
    const OpCase& tc = *GetParam();
    for (const int block : {16, 8})
        run_on_cpu(tc, ConvAlgorithm::DIRECT, block);
    run_on_cpu(tc, ConvAlgorithm::AUTO, 0);
}

INSTANTIATE_TEST_SUITE_P(Ops,
                         CpuVsReference,
                         ::testing::ValuesIn(op_case_params(false)),
                         [](const ::testing::TestParamInfo<const OpCase*>& param) {
                             return op_case_test_name(*param.param);
                         });

// OpKind values run from 0 without gaps and op_kind_name's switch has no default (-Wswitch
// makes a new kind name itself), so the names end where the kinds do.
std::set<OpKind> every_op_kind() {
    std::set<OpKind> kinds;
    for (int k = 0; std::string(engine::op_kind_name(static_cast<OpKind>(k))) != "?"; ++k)
        kinds.insert(static_cast<OpKind>(k));
    return kinds;
}

std::set<OpKind> kinds_missing(bool cuda_only) {
    std::set<OpKind> missing = every_op_kind();
    for (const OpCase& tc : op_cases()) {
        if (cuda_only && !tc.cuda)
            continue;
        for (const OpKind kind : op_kinds_of(tc))
            missing.erase(kind);
    }
    return missing;
}

std::string names(const std::set<OpKind>& kinds) {
    std::string out;
    for (const OpKind kind : kinds)
        out += std::string(out.empty() ? "" : ", ") + engine::op_kind_name(kind);
    return out;
}

TEST(OpCases, EveryOpKindHasACase) {
    EXPECT_GE(every_op_kind().size(), 15u);  // the kinds of 2026-12; guards the walk above
    const std::set<OpKind> missing = kinds_missing(false);
    EXPECT_TRUE(missing.empty()) << "no case in tests/ops/ for: " << names(missing);
}

TEST(OpCases, EveryOpKindHasACudaCase) {
    const std::set<OpKind> missing = kinds_missing(true);
    EXPECT_TRUE(missing.empty()) << "no case with a CUDA bound in tests/ops/ for: "
                                 << names(missing);
}

// gtest names each parameter after its case: the names must stay distinct.
TEST(OpCases, TestNamesAreUnique) {
    std::set<std::string> seen;
    for (const OpCase& tc : op_cases())
        EXPECT_TRUE(seen.insert(op_case_test_name(tc)).second) << tc.name;
}

}  // namespace
}  // namespace kiln::test
