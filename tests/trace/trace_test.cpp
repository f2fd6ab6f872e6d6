// Chrome trace recording around a plan run on the CPU backend: the JSON parses, every op of
// every sample has one complete event with a non-negative duration inside its forward range,
// and the forward range sits inside the job range.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/trace.h"
#include "tests/ops/graph_cases.h"

namespace kiln::test {
namespace {

using engine::Graph;
using engine::ValueId;

Graph tiny_graph() {
    Graph g;
    const ValueId x = g.input(6, 5, 3);
    const ValueId a = g.conv2d("conv_a", x, random_conv(3, 8, 3, 1), {});
    const ValueId b = g.upsample_nearest(a, 2);
    g.output(g.conv2d("conv_b", b, random_conv(8, 3, 3, 2), {}));
    return g;
}

struct Event {
    std::string name, cat;
    double ts, dur;
};

std::vector<Event> parse(const std::string& text) {
    const nlohmann::json doc = nlohmann::json::parse(text);  // throws when malformed
    std::vector<Event> events;
    for (const auto& e : doc.at("traceEvents")) {
        EXPECT_EQ(e.at("ph"), "X");
        EXPECT_TRUE(e.contains("pid"));
        EXPECT_TRUE(e.contains("tid"));
        EXPECT_TRUE(e.at("args").is_object());
        events.push_back({e.at("name").get<std::string>(), e.at("cat").get<std::string>(),
                          e.at("ts").get<double>(), e.at("dur").get<double>()});
    }
    return events;
}

bool inside(const Event& inner, const Event& outer) {
    const double eps = 1e-3;  // microseconds: rounding of the reconstructed op starts
    return inner.ts >= outer.ts - eps && inner.ts + inner.dur <= outer.ts + outer.dur + eps;
}

TEST(Trace, OneEventPerOpNestedInItsForwardAndJob) {
    const Graph g = tiny_graph();
    auto cpu = engine::cpu::make_cpu_backend();
    auto ctx = cpu->create_context({1});
    auto plan = cpu->compile(g, *ctx);
    const int batch = 2;
    const auto input = random_vector(static_cast<size_t>(6 * 5 * 3 * batch), 3);
    std::vector<float> output(static_cast<size_t>(12 * 10 * 3 * batch));

    engine::Trace trace;
    std::vector<std::pair<std::string, double>> caller_times;
    {
        engine::TraceRange job(&trace, "job", "job");
        job.arg("model", "tiny");
        engine::RunControl control;
        control.trace = &trace;
        control.op_times = &caller_times;  // still filled
        const float* inputs[1] = {input.data()};
        engine::run_traced(*plan, inputs, output.data(), batch, control, "forward tiny");
    }
    const size_t ops = g.ops().size();
    EXPECT_EQ(caller_times.size(), ops * batch);

    const std::vector<Event> events = parse(trace.to_json());
    std::vector<Event> op_events, forwards, jobs;
    for (const Event& e : events) {
        EXPECT_GE(e.dur, 0.0) << e.name;
        EXPECT_GE(e.ts, 0.0) << e.name;
        (e.cat == "op" ? op_events : e.cat == "forward" ? forwards : jobs).push_back(e);
    }
    ASSERT_EQ(forwards.size(), 1u);
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(forwards[0].name, "forward tiny");
    ASSERT_EQ(op_events.size(), ops * batch);
    EXPECT_TRUE(inside(forwards[0], jobs[0]));
    for (size_t i = 0; i < op_events.size(); ++i) {
        EXPECT_TRUE(inside(op_events[i], forwards[0])) << op_events[i].name;
        EXPECT_EQ(op_events[i].name, caller_times[i].first);
        if (i > 0) {  // laid out in order, back to back
            EXPECT_GE(op_events[i].ts, op_events[i - 1].ts + op_events[i - 1].dur - 1e-3);
        }
    }
    // The convolutions are named by the graph.
    EXPECT_EQ(std::count_if(op_events.begin(), op_events.end(),
                            [](const Event& e) { return e.name == "conv_a"; }),
              batch);
}

TEST(Trace, WithoutATraceRunTracedIsARun) {
    const Graph g = tiny_graph();
    auto cpu = engine::cpu::make_cpu_backend();
    auto ctx = cpu->create_context({1});
    auto plan = cpu->compile(g, *ctx);
    const auto input = random_vector(6 * 5 * 3, 4);
    std::vector<float> want(12 * 10 * 3), got(want.size());
    plan->run(input.data(), want.data(), {});
    engine::run_traced(*plan, input.data(), got.data(), {});
    EXPECT_EQ(got, want);
}

TEST(Trace, WritesAFileThatParses) {
    engine::Trace trace;
    {
        engine::TraceRange r(&trace, "name with \"quotes\" and \\ slash", "job");
        r.arg("key", "value\n");
    }
    const std::string path = ::testing::TempDir() + "kiln_trace_test.json";
    trace.write_file(path);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    const std::vector<Event> events = parse(text.str());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].name, "name with \"quotes\" and \\ slash");
    std::remove(path.c_str());
    EXPECT_THROW(trace.write_file("/nonexistent-dir/x.json"), core::Error);
}

}  // namespace
}  // namespace kiln::test
