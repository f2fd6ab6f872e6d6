// The ncnn reader: a .param text and its .bin blobs in one input, split at the first NUL
// (no NUL: the whole input is the param text and the bin is empty), then the import that
// recognises the layer structure.
#include <cstring>
#include <span>
#include <string_view>

#include "core/error.h"
#include "tests/fuzz/fuzz_input.h"
#include "weights/ncnn.h"
#include "weights/ncnn_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
    const size_t text_size = nul ? static_cast<size_t>(nul - data) : size;
    const std::string_view text(reinterpret_cast<const char*>(data), text_size);
    const std::span<const uint8_t> bin =
        nul ? std::span<const uint8_t>(nul + 1, size - text_size - 1) : std::span<const uint8_t>();
    try {
        kiln::weights::NcnnGraph graph = kiln::weights::parse_ncnn_param(text, "fuzz.param");
        kiln::weights::read_ncnn_weights(graph, bin, "fuzz.bin");
        kiln::weights::import_ncnn(graph);
    } catch (const kiln::core::Error&) {
    } catch (const std::exception& e) {
        kiln::fuzz::finding(e.what());
    }
    return 0;
}
