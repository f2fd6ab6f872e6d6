// The .pth reader: zip container (stored and deflated), the restricted unpickler, storages,
// then architecture detection on whatever state dict comes out.
#include "core/error.h"
#include "tests/fuzz/fuzz_input.h"
#include "weights/arch.h"
#include "weights/pth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = kiln::fuzz::input_file(data, size, ".pth");
    try {
        kiln::weights::detect_architecture(kiln::weights::load_pth(path));
    } catch (const kiln::core::Error&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    return 0;
}
