// The .safetensors reader: the JSON header (length, dtypes, shapes, offsets), its metadata
// block, then architecture detection.
#include "core/error.h"
#include "tests/fuzz/fuzz_input.h"
#include "weights/arch.h"
#include "weights/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = kiln::fuzz::input_file(data, size, ".safetensors");
    try {
        kiln::weights::load_safetensors_metadata(path);
    } catch (const kiln::core::Error&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    try {
        kiln::weights::detect_architecture(kiln::weights::load_safetensors(path));
    } catch (const kiln::core::Error&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    return 0;
}
