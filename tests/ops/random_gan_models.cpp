#include "tests/ops/random_gan_models.h"

#include <cmath>
#include <string>
#include <vector>

#include "tests/ops/graph_cases.h"
#include "weights/unet_gan_layers.h"

namespace kiln::test {

namespace {

// He-scaled random weights, so activations keep their size through the network.
weights::DetectedModel random_model(const std::vector<weights::GanLayer>& layers,
                                    weights::ArchConfig config,
                                    const std::string& arch,
                                    int scale) {
    weights::DetectedModel m;
    uint32_t seed = 1;
    for (const weights::GanLayer& l : layers) {
        const auto shape = l.weight_shape();
        const size_t n = static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]);
        const float s = std::sqrt(2.0f / static_cast<float>(l.in * l.kernel * l.kernel));
        m.weights[l.key + ".weight"] = {weights::StorageDType::F32, shape,
                                        random_vector(n, seed++, s)};
        m.weights[l.key + ".bias"] = {weights::StorageDType::F32,
                                      {l.out},
                                      random_vector(static_cast<size_t>(l.out), seed++, 0.05f)};
    }
    m.config = config;
    m.arch_name = arch;
    m.scale = scale;
    return m;
}

}  // namespace

std::unique_ptr<engine::Model> random_upconv7() {
    return engine::Model::create(
        random_model(weights::upconv7_layers({}), weights::UpConv7Config{}, "UpConv7", 2));
}

std::unique_ptr<engine::Model> random_cunet(int scale, weights::CUNetConfig::Program program) {
    weights::CUNetConfig c;
    c.scale = scale;
    c.program = program;
    return engine::Model::create(random_model(weights::cunet_layers(c), c, "CUNet", scale));
}

engine::FloatImage random_rgb(int h, int w, uint32_t seed) {
    engine::FloatImage img(h, w, 3);
    img.data = random_vector(img.data.size(), seed, 0.5f);
    for (float& v : img.data)
        v += 0.5f;
    return img;
}

}  // namespace kiln::test
