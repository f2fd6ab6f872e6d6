#include "tests/ops/op_cases.h"

#include <cctype>
#include <ostream>
#include <utility>

#include "tests/ops/case_families.h"
#include "tests/ops/graph_cases.h"

namespace kiln::test {

const std::vector<OpCase>& op_cases() {
    static const std::vector<OpCase> cases = [] {
        std::vector<OpCase> v;
        add_conv_cases(v);
        add_resample_cases(v);
        add_elementwise_cases(v);
        add_norm_cases(v);
        add_attention_cases(v);
        add_graph_cases(v);
        add_unet_gan_cases(v);
        add_omnisr_cases(v);
        return v;
    }();
    return cases;
}

std::vector<const OpCase*> op_case_params(bool cuda_only) {
    std::vector<const OpCase*> out;
    for (const OpCase& tc : op_cases()) {
        if (!cuda_only || tc.cuda)
            out.push_back(&tc);
    }
    return out;
}

void PrintTo(const OpCase* tc, std::ostream* out) {
    *out << tc->name;
}

BuiltCase build_case(const OpCase& tc) {
    BuiltCase b;
    std::vector<engine::ValueId> ids;
    for (const Shape& s : tc.inputs) {
        const auto i = static_cast<uint32_t>(ids.size());
        ids.push_back(b.graph.input(s.h, s.w, s.c));
        auto data = random_vector(static_cast<size_t>(s.h) * s.w * s.c * tc.batch, tc.seed + i,
                                  tc.input_scale);
        for (float& x : data)
            x += tc.input_offset;
        b.inputs.push_back(std::move(data));
    }
    b.graph.output(tc.build(b.graph, ids));
    const engine::Value& out = b.graph.value(b.graph.output_value());
    b.output_floats = static_cast<size_t>(out.h) * out.w * out.c;
    return b;
}

std::vector<std::vector<float>> sample_inputs(const BuiltCase& b, int batch, int n) {
    std::vector<std::vector<float>> out;
    for (const std::vector<float>& in : b.inputs) {
        const size_t per = in.size() / static_cast<size_t>(batch);
        const auto begin = in.begin() + static_cast<std::ptrdiff_t>(per * static_cast<size_t>(n));
        out.emplace_back(begin, begin + static_cast<std::ptrdiff_t>(per));
    }
    return out;
}

std::set<engine::OpKind> op_kinds_of(const OpCase& tc) {
    const BuiltCase b = build_case(tc);
    std::set<engine::OpKind> kinds;
    for (const engine::Op& op : b.graph.ops())
        kinds.insert(op.kind);
    return kinds;
}

std::string op_case_test_name(const OpCase& tc) {
    std::string n;
    for (const char ch : tc.name)
        n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
    return n;
}

}  // namespace kiln::test
