// Shared helpers for the weights tests: fixture paths, expected values written by
// tools/make_weight_fixtures.py, and error assertions.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <initializer_list>
#include <string>

#include "core/error.h"
#include "weights/state_dict.h"

namespace kiln::weights::test {

std::filesystem::path fixture(const std::string& name);     // tests/data/weights/<name>
std::filesystem::path real_model(const std::string& name);  // KILN_MODELS_DIR/<name>

// Compares `sd` with expected.json's entry `key` (tensor count, shapes, first values, sums).
// `rename` maps an expected key to the key in `sd` (identity when empty).
void expect_matches_fixture(const StateDict& sd,
                            const std::string& key,
                            const std::function<std::string(const std::string&)>& rename = {});

// Runs `fn`, which must throw kiln::core::Error with `code` and a message containing every part.
void expect_error(const std::function<void()>& fn,
                  core::ErrorCode code,
                  std::initializer_list<std::string> parts);

}  // namespace kiln::weights::test

// Skips the test when a real model file has not been fetched.
#define KILN_REQUIRE_REAL(path)                        \
    do {                                               \
        if (!std::filesystem::exists(path))            \
            GTEST_SKIP() << "not fetched: " << (path); \
    } while (0)
