// The names a job's files have in the result store: the scheduler writes them, the server
// reads them. Chosen here, never by a client.
#pragma once

#include <string>

namespace kiln::scheduler {

// The submitted input as kept for the run and for retries.
inline constexpr const char* input_file_name = "input";

inline std::string output_file_name(int index) {
    return "output-" + std::to_string(index) + ".png";
}

inline std::string thumbnail_file_name(int index) {
    return "thumbnail-" + std::to_string(index) + ".png";
}

}  // namespace kiln::scheduler
