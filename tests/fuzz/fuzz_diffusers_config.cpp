// The diffusers UNet config.json parser, and the original-LDM key mapping for whatever config
// it accepts (keys drawn from the input's own lines).
#include <sstream>
#include <string>

#include "core/error.h"
#include "tests/fuzz/fuzz_input.h"
#include "weights/diffusers_unet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const kiln::weights::UNetConfig config =
            kiln::weights::parse_unet_config(text, "fuzz/config.json");
        std::istringstream lines(text);
        std::string key;
        while (std::getline(lines, key))
            kiln::weights::ldm_key_to_diffusers(key, config);
    } catch (const kiln::core::Error&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    return 0;
}
