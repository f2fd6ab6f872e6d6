// core::json_nesting_depth: brackets counted outside strings, counting stopped past the limit.
#include <gtest/gtest.h>

#include <string>

#include "core/json_depth.h"

namespace kiln::core {
namespace {

TEST(JsonDepth, CountsArraysAndObjects) {
    EXPECT_EQ(json_nesting_depth("7", 64), 0u);
    EXPECT_EQ(json_nesting_depth("[]", 64), 1u);
    EXPECT_EQ(json_nesting_depth(R"({"a":[1,{"b":[]}],"c":{}})", 64), 4u);
    EXPECT_EQ(json_nesting_depth(R"([[1],[2],[3]])", 64), 2u);
}

TEST(JsonDepth, IgnoresBracketsInStrings) {
    EXPECT_EQ(json_nesting_depth(R"({"a":"[[[[{{{{"})", 64), 1u);
    // An escaped quote does not end the string; an escaped backslash before a quote does.
    EXPECT_EQ(json_nesting_depth(R"(["\"[[[", "\\", [1]])", 64), 2u);
}

TEST(JsonDepth, StopsPastTheLimit) {
    const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
    EXPECT_EQ(json_nesting_depth(deep, 64), 65u);
    EXPECT_EQ(json_nesting_depth(std::string(64, '[') + std::string(64, ']'), 64), 64u);
}

TEST(JsonDepth, MalformedTextIsCountedAsFarAsItGoes) {
    EXPECT_EQ(json_nesting_depth("]]]][", 64), 1u);
    EXPECT_EQ(json_nesting_depth("[[[\"unterminated [[[[", 64), 3u);
}

}  // namespace
}  // namespace kiln::core
