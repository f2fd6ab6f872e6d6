#include "kernels/linear.h"

#include "core/error.h"
#include "kernels/cuda_check.h"

namespace kiln::kernels {

namespace {

void check(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        throw core::Error(core::ErrorCode::UNSUPPORTED,
                          std::string("cuBLASLt ") + what + ": " + cublasLtGetStatusName(status));
    }
}

template <typename T>
void set_desc(cublasLtMatmulDesc_t op, cublasLtMatmulDescAttributes_t attr, const T& value) {
    check(cublasLtMatmulDescSetAttribute(op, attr, &value, sizeof(value)), "descriptor");
}

template <typename T>
void set_pref(cublasLtMatmulPreference_t pref,
              cublasLtMatmulPreferenceAttributes_t attr,
              const T& value) {
    check(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)), "preference");
}

}  // namespace

CublasLtLinear::CublasLtLinear(const LinearSetup& setup) : setup_(setup) {
    if (!setup.handle)
        throw core::Error(core::ErrorCode::UNSUPPORTED, "cuBLASLt is not initialised");
    if (setup.src.desc.pixels() != setup.dst.desc.pixels() || (setup.relu && !setup.bias))
        throw core::Error(core::ErrorCode::INVALID_ARGUMENT, "linear: inconsistent setup");
    const int64_t tokens = setup.src.desc.pixels();
    const int in = setup.src.desc.c, out = setup.dst.desc.c;
    cublasLtMatmulPreference_t pref = nullptr;
    try {
        check(cublasLtMatmulDescCreate(&op_, CUBLAS_COMPUTE_32F, CUDA_R_32F), "descriptor");
        set_desc(op_, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
        set_desc(op_, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
        const cublasLtEpilogue_t epilogue = !setup.bias  ? CUBLASLT_EPILOGUE_DEFAULT
                                            : setup.relu ? CUBLASLT_EPILOGUE_RELU_BIAS
                                                         : CUBLASLT_EPILOGUE_BIAS;
        set_desc(op_, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
        if (setup.bias) {
            const void* bias = setup.bias;
            set_desc(op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
        }
        // A: the weight [out][in] = column-major in x out (ld in), used transposed.
        check(cublasLtMatrixLayoutCreate(&a_, CUDA_R_16F, static_cast<uint64_t>(in),
                                         static_cast<uint64_t>(out), in),
              "layout A");
        // B: x^T, in x tokens, columns c_total apart; D: y^T, out x tokens.
        check(cublasLtMatrixLayoutCreate(&b_, CUDA_R_16F, static_cast<uint64_t>(in),
                                         static_cast<uint64_t>(tokens), setup.src.desc.c_total),
              "layout B");
        check(cublasLtMatrixLayoutCreate(&d_, CUDA_R_16F, static_cast<uint64_t>(out),
                                         static_cast<uint64_t>(tokens), setup.dst.desc.c_total),
              "layout D");
        check(cublasLtMatmulPreferenceCreate(&pref), "preference");
        const size_t workspace = setup.workspace ? setup.workspace_bytes : 0;
        set_pref(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, workspace);
        const auto address = [](const uint16_t* base, int offset) {
            return reinterpret_cast<uintptr_t>(base + offset);
        };
        const uint32_t align_a = linear_alignment(address(setup.weight, 0), in);
        const uint32_t align_b = linear_alignment(address(setup.src.data, setup.src.desc.c_offset),
                                                  setup.src.desc.c_total);
        const uint32_t align_d = linear_alignment(address(setup.dst.data, setup.dst.desc.c_offset),
                                                  setup.dst.desc.c_total);
        set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a);
        set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b);
        set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_d);
        set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_d);
        constexpr int kRequested = 8;
        cublasLtMatmulHeuristicResult_t results[kRequested] = {};
        int returned = 0;
        check(cublasLtMatmulAlgoGetHeuristic(setup.handle, op_, a_, b_, d_, d_, pref, kRequested,
                                             results, &returned),
              "heuristic");
        cublasLtMatmulPreferenceDestroy(pref);
        pref = nullptr;
        // Heuristic order; the first that launches (the trial writes the plan's own output
        // buffer, which its producer overwrites at run time).
        bool chosen = false;
        for (int k = 0; k < returned && !chosen; ++k) {
            if (results[k].state != CUBLAS_STATUS_SUCCESS || results[k].workspaceSize > workspace)
                continue;
            algo_ = results[k].algo;
            algo_workspace_ = results[k].workspaceSize;
            if (launch(setup.stream) == CUBLAS_STATUS_SUCCESS &&
                cudaGetLastError() == cudaSuccess) {
                chosen = true;
                candidates_ = returned;
            }
        }
        if (!chosen)
            throw core::Error(core::ErrorCode::UNSUPPORTED,
                              "cuBLASLt has no algorithm for this linear");
    } catch (...) {
        if (pref)
            cublasLtMatmulPreferenceDestroy(pref);
        destroy();
        throw;
    }
}

CublasLtLinear::~CublasLtLinear() {
    destroy();
}

void CublasLtLinear::destroy() {
    if (d_)
        cublasLtMatrixLayoutDestroy(d_);
    if (b_)
        cublasLtMatrixLayoutDestroy(b_);
    if (a_)
        cublasLtMatrixLayoutDestroy(a_);
    if (op_)
        cublasLtMatmulDescDestroy(op_);
    d_ = b_ = a_ = nullptr;
    op_ = nullptr;
}

cublasStatus_t CublasLtLinear::launch(cudaStream_t stream) const {
    const float one = 1.0f, zero = 0.0f;
    const uint16_t* x = setup_.src.data + setup_.src.desc.c_offset;
    uint16_t* y = setup_.dst.data + setup_.dst.desc.c_offset;
    // beta = 0: C is not read (D's layout and pointer given for it).
    return cublasLtMatmul(setup_.handle, op_, &one, setup_.weight, a_, x, b_, &zero, y, d_, y, d_,
                          &algo_, algo_workspace_ ? setup_.workspace : nullptr, algo_workspace_,
                          stream);
}

void CublasLtLinear::execute(cudaStream_t stream) const {
    const cublasStatus_t status = launch(stream);
    if (status != CUBLAS_STATUS_SUCCESS) {
        throw core::Error(core::ErrorCode::INTERNAL,
                          std::string("cuBLASLt matmul: ") + cublasLtGetStatusName(status));
    }
    KILN_CUDA_CHECK_LAUNCH("linear");
}

std::string CublasLtLinear::describe() const {
    std::string s = "cublaslt matmul";
    if (setup_.bias)
        s += setup_.relu ? " +bias+relu fused" : " +bias fused";
    return s + " ws " + std::to_string(algo_workspace_) + " of " +
           std::to_string(setup_.workspace_bytes) + " (" + std::to_string(candidates_) +
           " candidates)";
}

}  // namespace kiln::kernels
