// waifu2x / Real-CUGAN networks with random weights and random images, for the model-level
// tests of both backend suites (tests/cpu/*_model_test.cpp, tests/cuda/unet_gan_test.cpp).
#pragma once

#include <cstdint>
#include <memory>

#include "engine/models/model.h"
#include "engine/pipeline/float_image.h"
#include "weights/arch.h"

namespace kiln::test {

// UpConv7 (2x).
std::unique_ptr<engine::Model> random_upconv7();

// CUNet at scale 1, 2, 3 or 4, processed by `program`'s rules (Real-CUGAN's share their SE
// means across tiles).
std::unique_ptr<engine::Model> random_cunet(
    int scale,
    weights::CUNetConfig::Program program = weights::CUNetConfig::Program::REAL_CUGAN);

// An h x w RGB image of values uniform in [0, 1].
engine::FloatImage random_rgb(int h, int w, uint32_t seed = 42);

}  // namespace kiln::test
