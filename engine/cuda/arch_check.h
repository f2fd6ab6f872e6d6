// Whether this binary carries code for a CUDA device, pure C++ so the CPU tests cover it:
// the compiled list is CMake's CMAKE_CUDA_ARCHITECTURES (passed to the engine as the
// KILN_CUDA_ARCHS definition, commas for semicolons), the device's compute capability comes
// from the runtime. The verdict's message is the one line a user sees at startup.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::engine::cuda {

// One entry of CMAKE_CUDA_ARCHITECTURES: "86" (SASS sm_86 and PTX compute_86), "86-real"
// (SASS only), "86-virtual" (PTX only); "90a" is arch-specific (runs on 9.0 only).
struct CompiledArch {
    int sm = 0;  // 86 for "86"
    bool sass = false;
    bool ptx = false;
    bool specific = false;  // an "a" suffix
};

// The entries of a list ("80;90", "80,90-real"); empty when the list names no architecture
// by number ("native", "all", "all-major": only the runtime can tell).
inline std::vector<CompiledArch> parse_cuda_archs(std::string_view list) {
    std::vector<CompiledArch> out;
    size_t pos = 0;
    while (pos <= list.size()) {
        size_t end = list.find_first_of(",;", pos);
        if (end == std::string_view::npos)
            end = list.size();
        std::string_view item = list.substr(pos, end - pos);
        pos = end + 1;
        CompiledArch a;
        size_t i = 0;
        while (i < item.size() && std::isdigit(static_cast<unsigned char>(item[i]))) {
            a.sm = a.sm * 10 + (item[i] - '0');
            ++i;
        }
        if (i == 0)
            continue;
        std::string_view rest = item.substr(i);
        if (!rest.empty() && (rest[0] == 'a' || rest[0] == 'f')) {
            a.specific = rest[0] == 'a';
            rest = rest.substr(1);
        }
        a.sass = rest != "-virtual";
        a.ptx = rest != "-real";
        out.push_back(a);
    }
    return out;
}

struct ArchVerdict {
    bool known = false;  // the list named architectures (else only the runtime probe decides)
    bool runs = false;   // SASS for the device, or PTX it can JIT-compile
    bool jit = false;    // runs only through PTX JIT compilation (slow first launch)
    std::string message;
};

// A compiled arch's SASS runs on devices of the same major version and an equal or higher
// minor (an arch-specific one only on its own version); PTX JIT-compiles for any device at
// or above its version (an arch-specific one only on its own).
inline ArchVerdict check_cuda_arch(int major,
                                   int minor,
                                   std::string_view compiled,
                                   const std::string& device_name) {
    const int device = major * 10 + minor;
    const std::vector<CompiledArch> archs = parse_cuda_archs(compiled);
    ArchVerdict v;
    v.known = !archs.empty();
    bool sass = false, ptx = false;
    std::string names;
    for (const CompiledArch& a : archs) {
        const bool exact = a.sm == device;
        if (a.sass && (a.specific ? exact : a.sm / 10 == major && a.sm % 10 <= minor))
            sass = true;
        if (a.ptx && (a.specific ? exact : a.sm <= device))
            ptx = true;
        if (!names.empty())
            names += ", ";
        const std::string suffix = a.specific ? "a" : "";
        if (a.sass)
            names += "sm_" + std::to_string(a.sm) + suffix;
        if (a.sass && a.ptx)
            names += " + ";
        if (a.ptx)
            names += "compute_" + std::to_string(a.sm) + suffix + " PTX";
    }
    const std::string dev = "CUDA device " + device_name + " is sm_" + std::to_string(device);
    if (!v.known) {
        v.runs = true;  // unknown here: the runtime probe decides
        v.message =
            dev + "; this binary was built for CUDA architectures '" + std::string(compiled) + "'";
        return v;
    }
    v.runs = sass || ptx;
    v.jit = !sass && ptx;
    if (!v.runs) {
        v.message = dev + ", but this binary has code only for " + names +
                    ": rebuild with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(device) +
                    " (or add it to the list)";
    } else if (v.jit) {
        v.message = dev + "; this binary has " + names +
                    ": kernels are JIT-compiled from PTX at first use (rebuild with "
                    "-DCMAKE_CUDA_ARCHITECTURES=" +
                    std::to_string(device) + " to avoid it)";
    } else {
        v.message = dev + "; this binary has " + names;
    }
    return v;
}

}  // namespace kiln::engine::cuda
