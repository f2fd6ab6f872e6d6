// The .safetensors reader: the JSON header (length, dtypes, shapes, offsets), its metadata
// block, architecture detection, and kiln's architecture block in the metadata (what
// `kiln convert` writes) applied to what detection found.
#include "core/error.h"
#include "tests/fuzz/fuzz_input.h"
#include "weights/arch.h"
#include "weights/arch_metadata.h"
#include "weights/registry.h"
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
        // Detection, then the metadata block (the registry's path for a .safetensors file).
        kiln::weights::load_model_files("safetensors", {path});
    } catch (const kiln::core::Error&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    return 0;
}
