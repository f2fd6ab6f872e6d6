// The CUDA backend's host-side decisions, tested without a GPU: device pool pressure
// (engine/cuda/pool_policy.h), 64-bit descriptor math (tensor_dims.h), convolution routing
// and the view-path choice (conv_routing.h), and the architecture check (arch_check.h).
#include <gtest/gtest.h>

#include <cstdint>

#include "engine/cuda/arch_check.h"
#include "engine/cuda/conv_routing.h"
#include "engine/cuda/pool_policy.h"
#include "engine/cuda/tensor_dims.h"

namespace kiln::engine::cuda {
namespace {

using kernels::ViewDesc;

TEST(PoolPolicy, ReleaseThreshold) {
    EXPECT_EQ(pool_release_threshold(SIZE_MAX), UINT64_MAX);  // a worker keeps its blocks
    EXPECT_EQ(pool_release_threshold(0), 0u);                 // admission returns them
    EXPECT_EQ(pool_release_threshold(size_t{64} << 20), uint64_t{64} << 20);
}

TEST(PoolPolicy, TrimsOwnPoolThenTheDeviceThenGivesUp) {
    PoolPressure p;
    p.request = size_t{1} << 30;
    p.own_cached = size_t{512} << 20;
    p.others_cached = size_t{2} << 30;
    p.device_total = size_t{140} << 30;
    PoolOomDone done;
    EXPECT_EQ(pool_oom_next(done, p), PoolOomStep::TRIM_OWN);
    done.own_trimmed = true;
    p.own_cached = 0;
    EXPECT_EQ(pool_oom_next(done, p), PoolOomStep::TRIM_DEVICE);
    done.device_trimmed = true;
    p.others_cached = 0;
    EXPECT_EQ(pool_oom_next(done, p), PoolOomStep::GIVE_UP);
    // Still cached after a trim (blocks freed later on another stream): no second trim.
    p.own_cached = p.others_cached = 4096;
    EXPECT_EQ(pool_oom_next(done, p), PoolOomStep::GIVE_UP);
}

TEST(PoolPolicy, SkipsStepsThatCannotHelp) {
    PoolPressure p;
    p.request = 1024;
    p.others_cached = 4096;
    EXPECT_EQ(pool_oom_next({}, p), PoolOomStep::TRIM_DEVICE);  // nothing cached here
    p.others_cached = 0;
    EXPECT_EQ(pool_oom_next({}, p), PoolOomStep::GIVE_UP);  // nothing cached anywhere
    p.own_cached = 4096;
    p.capturing = true;  // a capturing stream cannot synchronise
    EXPECT_EQ(pool_oom_next({}, p), PoolOomStep::GIVE_UP);
    p.capturing = false;
    p.device_total = size_t{80} << 30;
    p.request = size_t{1} << 50;  // more than the device has: no trim helps
    EXPECT_EQ(pool_oom_next({}, p), PoolOomStep::GIVE_UP);
    p.request = 1024;
    EXPECT_EQ(pool_oom_next({}, p), PoolOomStep::TRIM_OWN);
}

TEST(TensorDims, StridesOverTwoToThe31AreComputedIn64Bits) {
    // A 64-channel slice of a 128-channel 8192 x 8192 buffer: 2^33 elements.
    const ViewDesc v{8192, 8192, 64, 128, 64};
    const CudnnViewDims d = cudnn_view_dims(v, false);
    EXPECT_EQ(d.w_stride, 128);
    EXPECT_EQ(d.h_stride, int64_t{8192} * 128);
    EXPECT_EQ(d.n_stride, int64_t{1} << 33);
    EXPECT_EQ(cudnn_view_span(d), (int64_t{8192} * 8192 - 1) * 128 + 64);
    EXPECT_FALSE(cudnn_view_fits(d));
    const std::string msg = cudnn_view_limit_message("convolution input", d);
    EXPECT_NE(msg.find("8192x8192x64"), std::string::npos) << msg;
    EXPECT_NE(msg.find("8589934592"), std::string::npos) << msg;
    EXPECT_NE(msg.find("smaller tiles"), std::string::npos) << msg;
    // Its packed copy: 2^32 elements, still too many; bytes in size_t.
    const CudnnViewDims p = cudnn_view_dims(v, true);
    EXPECT_EQ(p.n_stride, int64_t{1} << 32);
    EXPECT_FALSE(cudnn_view_fits(p));
    EXPECT_EQ(half_view_bytes(v), size_t{1} << 33);
}

TEST(TensorDims, TheLargestViewThatFits) {
    // 2^31 - 2^16 elements fit...
    const ViewDesc below{32767, 1, 65536, 65536, 0};
    const CudnnViewDims d = cudnn_view_dims(below, false);
    EXPECT_EQ(d.n_stride, (int64_t{1} << 31) - 65536);
    EXPECT_EQ(cudnn_view_span(d), d.n_stride);
    EXPECT_TRUE(cudnn_view_fits(d));
    // ...2^31 do not (one past INT32_MAX), nor does a slice whose stride takes it over.
    const ViewDesc at{32768, 1, 65536, 65536, 0};
    EXPECT_FALSE(cudnn_view_fits(cudnn_view_dims(at, false)));
    const ViewDesc slice{32768, 1, 8, 65536, 0};
    EXPECT_FALSE(cudnn_view_fits(cudnn_view_dims(slice, false)));
    EXPECT_TRUE(cudnn_view_fits(cudnn_view_dims(slice, true)));  // its packed copy fits
    // A small channel view of a wide buffer.
    const CudnnViewDims s = cudnn_view_dims({128, 128, 32, 192, 160}, false);
    EXPECT_EQ(s.h_stride, 128 * 192);
    EXPECT_EQ(cudnn_view_span(s), (int64_t{128} * 128 - 1) * 192 + 32);
    EXPECT_TRUE(cudnn_view_fits(s));
}

TEST(ConvRouting, EveryWholeViewOneByOneStrideOneGoesToCublasLt) {
    ConvRouteQuery q;
    q.kernel = 1;
    q.src = {64, 64, 320, 320, 0};  // a UNet transformer linear on a [h, w, c] map
    q.dst = {64, 64, 960, 960, 0};
    EXPECT_EQ(conv_route(q), ConvRoute::CUBLASLT);
    q.src = {77, 1, 768, 768, 0};     // cross-attention context tokens
    q.dst = {77, 1, 640, 1280, 640};  // into a channel slice of a token sequence
    EXPECT_EQ(conv_route(q), ConvRoute::CUBLASLT);
    // A channel slice of a spatial map (RRDB's 1x1 into a dense-block slice): cuDNN.
    q.src = {64, 64, 64, 64, 0};
    q.dst = {64, 64, 64, 160, 0};
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
    q.dst = {64, 64, 64, 64, 0};
    EXPECT_EQ(conv_route(q), ConvRoute::CUBLASLT);
    q.stride = 2;
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
    q.stride = 1;
    q.kernel = 3;
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
    q.kernel = 1;
    q.cublaslt_ready = false;  // no handle on this context
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
    q.cublaslt_ready = true;
    q.cublaslt_enabled = false;
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
    q.cublaslt_enabled = true;
    q.pad = 1;  // not a GEMM over the pixels (the graph refuses it anyway: pad < kernel)
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
    q.pad = 0;
    EXPECT_EQ(conv_route(q), ConvRoute::CUBLASLT);
}

TEST(ConvRouting, GroupedConvolutionsAlwaysGoToCudnn) {
    // A grouped 1x1 on whole buffers or token sequences would be a GEMM that ignores the
    // groups: only cuDNN's group count computes it.
    ConvRouteQuery q;
    q.kernel = 1;
    q.src = {64, 64, 64, 64, 0};
    q.dst = {64, 64, 64, 64, 0};
    q.groups = 64;  // depthwise
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
    q.groups = 2;
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
    q.src = {77, 1, 64, 64, 0};
    q.dst = {77, 1, 64, 64, 0};
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
    q.groups = 1;
    EXPECT_EQ(conv_route(q), ConvRoute::CUBLASLT);
    q.kernel = 3;  // OmniSR's depthwise 3x3s
    q.pad = 1;
    q.groups = 64;
    EXPECT_EQ(conv_route(q), ConvRoute::CUDNN);
}

TEST(ConvRouting, CublasLtWorkspace) {
    EXPECT_EQ(cublaslt_workspace_bytes(9, 0, size_t{64} << 20), size_t{32} << 20);  // H100/H200
    EXPECT_EQ(cublaslt_workspace_bytes(10, 0, size_t{64} << 20), size_t{32} << 20);
    EXPECT_EQ(cublaslt_workspace_bytes(8, 0, size_t{64} << 20), size_t{4} << 20);  // A100
    EXPECT_EQ(cublaslt_workspace_bytes(9, size_t{1} << 20, size_t{64} << 20), size_t{1} << 20);
    EXPECT_EQ(cublaslt_workspace_bytes(9, 0, size_t{8} << 20), size_t{8} << 20);  // the limit
}

TEST(ConvRouting, ViewPathsOnSlicesAreTimedUnlessOneIsForced) {
    const ViewDesc slice{128, 128, 64, 192, 0}, whole{128, 128, 32, 32, 0};
    const auto plan = [](ConvViewChoice c, const ViewDesc& s, const ViewDesc& d) {
        const ConvViewPlan p = conv_view_plan(c, s, d);
        return std::to_string(p.strided) + std::to_string(p.packed) + std::to_string(p.time_both);
    };
    const auto choose = ConvViewChoice::CHOOSE;
    EXPECT_EQ(plan(choose, slice, whole), "111");  // the default: both built, both timed
    EXPECT_EQ(plan(choose, whole, slice), "111");
    EXPECT_EQ(plan(choose, slice, slice), "111");
    EXPECT_EQ(plan(choose, whole, whole), "100");  // no copies to compare with
    EXPECT_EQ(plan(ConvViewChoice::PACKED, slice, whole), "010");
    EXPECT_EQ(plan(ConvViewChoice::PACKED, whole, whole), "100");
    EXPECT_EQ(plan(ConvViewChoice::STRIDED, slice, whole), "100");
}

TEST(ConvRouting, TheFasterViewPathIsKept) {
    EXPECT_EQ(pick_conv_view_path(0.20f, 0.15f), ConvViewPath::PACKED);
    EXPECT_EQ(pick_conv_view_path(0.15f, 0.20f), ConvViewPath::STRIDED);
    EXPECT_EQ(pick_conv_view_path(0.15f, 0.15f), ConvViewPath::STRIDED);  // no scratch
    EXPECT_EQ(pick_conv_view_path(-1.0f, 0.20f), ConvViewPath::PACKED);
    EXPECT_EQ(pick_conv_view_path(0.20f, -1.0f), ConvViewPath::STRIDED);
    EXPECT_EQ(pick_conv_view_path(-1.0f, -1.0f), ConvViewPath::STRIDED);
}

TEST(ArchCheck, ParsesCMakeArchitectureLists) {
    const auto a = parse_cuda_archs("80;90a-real,86-virtual");
    ASSERT_EQ(a.size(), 3u);
    EXPECT_EQ(a[0].sm, 80);
    EXPECT_TRUE(a[0].sass && a[0].ptx && !a[0].specific);
    EXPECT_EQ(a[1].sm, 90);
    EXPECT_TRUE(a[1].sass && !a[1].ptx && a[1].specific);
    EXPECT_EQ(a[2].sm, 86);
    EXPECT_TRUE(!a[2].sass && a[2].ptx);
    EXPECT_TRUE(parse_cuda_archs("native").empty());
    EXPECT_TRUE(parse_cuda_archs("all-major").empty());
    EXPECT_TRUE(parse_cuda_archs("").empty());
}

TEST(ArchCheck, DevicesTheDefaultBuildRunsOn) {
    const ArchVerdict h200 = check_cuda_arch(9, 0, "80,90", "0 (NVIDIA H200)");
    EXPECT_TRUE(h200.known && h200.runs && !h200.jit);
    EXPECT_NE(h200.message.find("sm_90"), std::string::npos) << h200.message;
    // sm_80 SASS runs on sm_86 and sm_89 (same major, higher minor).
    EXPECT_TRUE(check_cuda_arch(8, 6, "80,90", "0").runs);
    EXPECT_FALSE(check_cuda_arch(8, 6, "80,90", "0").jit);
    // Blackwell (sm_120): no SASS; compute_90 PTX JIT-compiles.
    const ArchVerdict jit = check_cuda_arch(12, 0, "80;90", "0 (RTX 5090)");
    EXPECT_TRUE(jit.runs && jit.jit);
    EXPECT_NE(jit.message.find("sm_120"), std::string::npos) << jit.message;
}

TEST(ArchCheck, AMissingArchitectureIsNamed) {
    // Only sm_90 SASS (the default "90-real"-style build without PTX) on an A100.
    const ArchVerdict v = check_cuda_arch(8, 0, "90-real", "0 (NVIDIA A100-SXM4-80GB)");
    EXPECT_TRUE(v.known);
    EXPECT_FALSE(v.runs);
    EXPECT_NE(v.message.find("is sm_80"), std::string::npos) << v.message;
    EXPECT_NE(v.message.find("sm_90"), std::string::npos) << v.message;
    EXPECT_NE(v.message.find("-DCMAKE_CUDA_ARCHITECTURES=80"), std::string::npos) << v.message;
    // PTX never runs below its version; arch-specific code only on its own version.
    EXPECT_FALSE(check_cuda_arch(7, 5, "80", "0").runs);
    EXPECT_FALSE(check_cuda_arch(10, 0, "90a", "0").runs);
    EXPECT_TRUE(check_cuda_arch(9, 0, "90a", "0").runs);
    // An unnamed list ("native"): left to the runtime probe.
    const ArchVerdict native = check_cuda_arch(9, 0, "native", "0");
    EXPECT_FALSE(native.known);
    EXPECT_TRUE(native.runs);
}

}  // namespace
}  // namespace kiln::engine::cuda
