// Inputs the scheduler tests share: a small synthetic PNG, a models folder holding the
// committed SRVGGNetCompact x4 weights under the names a test asks for, and one job run the
// way a worker runs it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "image/image.h"
#include "scheduler/model_cache.h"

namespace kiln::test {

// An RGB image whose samples depend on `seed`, so different seeds give different files.
inline std::vector<uint8_t> test_png(int width, int height, int seed) {
    image::Image img;
    img.width = width;
    img.height = height;
    img.channels = 3;
    img.samples.resize(img.sample_count());
    for (size_t i = 0; i < img.samples.size(); ++i)
        img.samples[i] = static_cast<uint16_t>((i * 7 + static_cast<size_t>(seed) * 31) % 256);
    return image::encode_png(img);
}

// Copies tests/data/weights/srvgg_x4.pth into `models` once per file name (e.g. "other.pth").
inline void add_srvgg_models(const std::filesystem::path& models,
                             std::initializer_list<const char*> names) {
    std::filesystem::create_directories(models);
    for (const char* name : names) {
        std::filesystem::copy_file(std::filesystem::path(KILN_TEST_DATA) / "weights/srvgg_x4.pth",
                                   models / name);
    }
}

// Runs an upscale job of `png` (tile from `memory_budget`) with the plans `context`'s worker
// keeps for `name` in `cache`, as Scheduler::run_job does.
inline void run_on_worker(scheduler::ModelCache& cache,
                          const std::string& name,
                          engine::Backend& backend,
                          engine::ExecutionContext& context,
                          const std::vector<uint8_t>& png,
                          size_t memory_budget) {
    const auto model = cache.acquire(name);
    const auto plans = cache.plans(name, model, backend, context);
    model->run(scheduler::Job{}, png, plans.get(), backend, context,
               scheduler::TaskLimits{memory_budget, {}}, {});
}

}  // namespace kiln::test
