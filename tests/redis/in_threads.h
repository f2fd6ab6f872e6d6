// Runs a body on several threads at once (several nodes) and collects what each threw, so a
// failure on one thread is reported by the test rather than ending the process.
#pragma once

#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace kiln::test {

// body(t) on n threads; element t is "" or the message thread t's exception carried.
inline std::vector<std::string> run_in_threads(int n, const std::function<void(int)>& body) {
    std::vector<std::string> errors(static_cast<size_t>(n));
    std::vector<std::thread> threads;
    for (int t = 0; t < n; ++t) {
        threads.emplace_back([&body, &errors, t] {
            try {
                body(t);
            } catch (const std::exception& e) {
                errors[static_cast<size_t>(t)] = e.what();
            }
        });
    }
    for (std::thread& thread : threads)
        thread.join();
    return errors;
}

}  // namespace kiln::test
