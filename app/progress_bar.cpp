#include "app/progress_bar.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace kiln::app {

std::string format_duration(double seconds) {
    char buf[32];
    if (seconds < 60) {
        std::snprintf(buf, sizeof buf, "%.1fs", seconds);
    } else {
        const int s = static_cast<int>(std::lround(seconds));
        std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
    }
    return buf;
}

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      enabled_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
    finish();
}

void ProgressBar::update(int done, int total) {
    if (!enabled_ || total <= 0)
        return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    constexpr int kWidth = 30;
    const int filled = kWidth * done / total;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kWidth - filled), ' ');
    std::string eta = "--";
    if (done > 0)
        eta = format_duration(elapsed / done * (total - done));
    std::fprintf(stderr, "\r%s [%s] %d/%d tiles  elapsed %s  ETA %s ", label_.c_str(), bar.c_str(),
                 done, total, format_duration(elapsed).c_str(), eta.c_str());
    std::fflush(stderr);
    drawn_ = true;
}

void ProgressBar::finish() {
    if (drawn_)
        std::fputc('\n', stderr);
    drawn_ = false;
}

}  // namespace kiln::app
