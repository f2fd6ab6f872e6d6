// waifu2x / Real-CUGAN networks with random weights, for the model-level tests of both
// backend suites (tests/cpu/unet_gan_model_test.cpp, tests/cuda/unet_gan_test.cpp).
#pragma once

#include <memory>

#include "engine/models/model.h"
#include "weights/arch.h"

namespace kiln::test {

// UpConv7 (2x).
std::unique_ptr<engine::Model> random_upconv7();

// CUNet at scale 1, 2, 3 or 4, processed by `program`'s rules (Real-CUGAN's share their SE
// means across tiles).
std::unique_ptr<engine::Model> random_cunet(
    int scale,
    weights::CUNetConfig::Program program = weights::CUNetConfig::Program::REAL_CUGAN);

}  // namespace kiln::test
