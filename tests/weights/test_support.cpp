#include "tests/weights/test_support.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace kiln::weights::test {

std::filesystem::path fixture(const std::string& name) {
    return std::filesystem::path(KILN_TEST_DATA) / "weights" / name;
}

std::filesystem::path real_model(const std::string& name) {
    return std::filesystem::path(KILN_MODELS_DIR) / name;
}

void expect_matches_fixture(const StateDict& sd,
                            const std::string& key,
                            const std::function<std::string(const std::string&)>& rename) {
    static const nlohmann::json expected = [] {
        std::ifstream in(fixture("expected.json"));
        return nlohmann::json::parse(in);
    }();
    ASSERT_TRUE(expected.contains(key)) << key;
    const auto& e = expected[key];
    EXPECT_EQ(sd.size(), e["count"].get<size_t>()) << key;
    for (const auto& [name, t] : e["tensors"].items()) {
        const std::string k = rename ? rename(name) : name;
        auto it = sd.find(k);
        ASSERT_NE(it, sd.end()) << key << ": missing " << k;
        const WeightTensor& w = it->second;
        EXPECT_EQ(w.shape, t["shape"].get<std::vector<int64_t>>()) << key << ": " << k;
        ASSERT_EQ(static_cast<size_t>(w.numel()), w.data.size());
        const auto first = t["first"].get<std::vector<double>>();
        for (size_t i = 0; i < first.size(); ++i) {
            EXPECT_EQ(w.data[i], static_cast<float>(first[i]))
                << key << ": " << k << "[" << i << "]";
        }
        double sum = 0;
        for (float v : w.data)
            sum += v;
        EXPECT_NEAR(sum, t["sum"].get<double>(), 1e-4) << key << ": " << k;
    }
}

void expect_error(const std::function<void()>& fn,
                  core::ErrorCode code,
                  std::initializer_list<std::string> parts) {
    try {
        fn();
        ADD_FAILURE() << "no kiln::core::Error thrown";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        for (const std::string& p : parts)
            EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
                << "'" << p << "' not in: " << e.what();
    }
}

}  // namespace kiln::weights::test
