// One convolution of a CPU plan: a oneDNN primitive chosen once at plan time, with as much of
// the epilogue fused as oneDNN accepts and the rest run as one in-place pass.
#pragma once

#include <dnnl.hpp>
#include <string>
#include <vector>

#include "engine/cpu/cpu_ops.h"
#include "engine/graph/graph.h"

namespace kiln::engine::cpu {

enum class ConvAlgorithm {
    AUTO,    // Winograd where oneDNN has a fast one for the shape, else direct
    DIRECT,  // direct only (exact fp32 summation order of oneDNN's direct kernels)
};

struct ConvSetup {
    const ConvWeights* weights = nullptr;
    const Epilogue* epilogue = nullptr;
    CpuView src;
    CpuView dst;
    std::vector<CpuView> residuals;  // one per epilogue add
    ConvAlgorithm algorithm = ConvAlgorithm::AUTO;
};

dnnl::memory::desc view_desc(const ViewLayout& layout);

class OnednnConv {
  public:
    OnednnConv(const dnnl::engine& engine, const ConvSetup& setup);

    size_t scratchpad_bytes() const { return scratchpad_bytes_; }
    size_t weight_bytes() const { return weights_.get_desc().get_size(); }
    // The plan's shared scratch region, at least scratchpad_bytes() long.
    void bind_scratchpad(void* ptr);
    void execute(dnnl::stream& stream, int threads);
    // e.g. "jit_wino_4x3:avx512_core + pass(lrelu)"
    const std::string& describe() const { return description_; }

  private:
    bool try_create(const ConvSetup& setup, dnnl::algorithm algorithm, bool fuse);

    dnnl::engine engine_;
    dnnl::convolution_forward::primitive_desc pd_;
    dnnl::convolution_forward primitive_;
    std::unordered_map<int, dnnl::memory> args_;
    std::vector<dnnl_exec_arg_t> c_args_;  // args_ for the C API, built by bind_scratchpad
    dnnl::memory weights_;
    size_t scratchpad_bytes_ = 0;
    bool fused_ = false;
    EpilogueArgs pass_;  // what runs after the primitive when not fused
    CpuView dst_;
    std::vector<float> prelu_;  // slopes for the fused PReLU post-op
    std::vector<float> bias_;   // bias, scaled when an add's scale was folded in
    std::string description_;
};

}  // namespace kiln::engine::cpu
