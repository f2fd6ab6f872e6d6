// A one-line terminal progress bar on stderr (done/total, elapsed, ETA); silent when stderr
// is not a terminal, so piped output stays clean.
#pragma once

#include <chrono>
#include <string>

namespace kiln::app {

class ProgressBar {
  public:
    explicit ProgressBar(std::string label);
    ~ProgressBar();
    void update(int done, int total);
    void finish();

  private:
    std::string label_;
    bool enabled_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point start_;
};

// "12.3s", "2m05s"
std::string format_duration(double seconds);

}  // namespace kiln::app
