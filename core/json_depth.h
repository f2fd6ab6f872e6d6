// How deeply JSON text nests arrays and objects, counted from the text without building
// anything. nlohmann::json parses iteratively but serializes and compares recursively, so a
// document nested a million levels deep would overflow the stack of whoever dumps it later
// (the idempotency hash dumps every submission): readers of untrusted JSON refuse such text
// before parsing it.
#pragma once

#include <cstddef>
#include <string_view>

namespace kiln::core {

// The deepest nesting in `text` (0 for a scalar, 1 for [] or {}), brackets inside strings not
// counted. Stops at the first level past `limit` and returns limit + 1. Malformed text is
// counted as far as it goes (the parser refuses it afterwards).
size_t json_nesting_depth(std::string_view text, size_t limit);

// Nesting kiln accepts in request bodies and model files' JSON; real documents use under 10.
constexpr size_t max_json_depth = 64;

}  // namespace kiln::core
