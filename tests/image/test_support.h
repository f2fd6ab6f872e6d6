// Shared helpers of the kiln_image tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "image/image.h"

namespace kiln::image::test {

inline std::filesystem::path fixture_path(const std::string& name) {
    return std::filesystem::path(KILN_TEST_DATA) / "image" / name;
}

inline std::vector<uint8_t> fixture_bytes(const std::string& name) {
    std::ifstream file(fixture_path(name), std::ios::binary);
    EXPECT_TRUE(file) << "missing fixture " << fixture_path(name);
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// The core::ErrorCode that `fn` throws; fails the test when it throws anything else or nothing.
inline core::ErrorCode error_code_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const core::Error& error) {
        return error.code();
    } catch (const std::exception& error) {
        ADD_FAILURE() << "threw a non-kiln exception: " << error.what();
        return core::ErrorCode::INTERNAL;
    }
    ADD_FAILURE() << "did not throw";
    return core::ErrorCode::INTERNAL;
}

inline std::string error_message_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const core::Error& error) {
        return error.what();
    }
    ADD_FAILURE() << "did not throw a kiln::core::Error";
    return {};
}

}  // namespace kiln::image::test
