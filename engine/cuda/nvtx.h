// NVTX3 ranges in kiln's own domain, behind KILN_NVTX_RANGE(name), which compiles to nothing
// unless KILN_NVTX is defined (engine/CMakeLists.txt: option KILN_NVTX).
#pragma once

#if defined(KILN_NVTX)
#include <nvtx3/nvToolsExt.h>

namespace kiln::engine::cuda {

inline nvtxDomainHandle_t nvtx_domain() {
    static const nvtxDomainHandle_t domain = nvtxDomainCreateA("kiln");
    return domain;
}

class NvtxRange {
  public:
    explicit NvtxRange(const char* name) {
        nvtxEventAttributes_t attr{};
        attr.version = NVTX_VERSION;
        attr.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
        attr.messageType = NVTX_MESSAGE_TYPE_ASCII;
        attr.message.ascii = name;
        nvtxDomainRangePushEx(nvtx_domain(), &attr);
    }
    ~NvtxRange() { nvtxDomainRangePop(nvtx_domain()); }
    NvtxRange(const NvtxRange&) = delete;
    NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace kiln::engine::cuda

#define KILN_NVTX_CONCAT2(a, b) a##b
#define KILN_NVTX_CONCAT(a, b) KILN_NVTX_CONCAT2(a, b)
#define KILN_NVTX_RANGE(name) \
    ::kiln::engine::cuda::NvtxRange KILN_NVTX_CONCAT(kiln_nvtx_range_, __LINE__)(name)
#else
#define KILN_NVTX_RANGE(name) static_cast<void>(0)
#endif
