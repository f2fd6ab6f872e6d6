// The op graph that model code builds once per input shape and a backend compiles into a Plan.
// Models are written against this interface only, so CPU and CUDA run the same model code.
//
// Values are views of buffers: a view covers channels [c_offset, c_offset + c) of a buffer of
// c_total channels. Convolutions may write into a view of a larger buffer; that is how the
// RRDB dense blocks concatenate with no copies.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace kiln::engine {

using ValueId = int;
inline constexpr ValueId kNoValue = -1;

enum class OpKind {
    INPUT,              // the plan's input image, NHWC float
    CONV2D,             // convolution + bias + epilogue
    UPSAMPLE_NEAREST,   // integer factor
    UPSAMPLE_BILINEAR,  // integer factor, align_corners = false
    PIXEL_SHUFFLE,      // [h, w, c*r*r] -> [h*r, w*r, c]
    PIXEL_UNSHUFFLE,    // [h*r, w*r, c] -> [h, w, c*r*r]
    RESIZE_BICUBIC,     // any output size; half-pixel centres, A = -0.75, edge clamp
    ADD,                // out = a * scale + b; b may be [1, 1, c] (added to every pixel)
    OUTPUT,             // the plan's output, NHWC float
    // The diffusion UNet's ops. A sequence of L tokens of d features is a [L, 1, d] value.
    GROUP_NORM,  // per (group of c / groups channels) over all pixels; * gamma + beta; act
    LAYER_NORM,  // per pixel over its channels; * gamma + beta
    ACTIVATION,  // out = act(x), elementwise
    GEGLU,       // x [h, w, 2c] -> [h, w, c]: x[.., :c] * gelu(x[.., c:])
    ATTENTION,   // per head: softmax(q k^T * scale) v; q [h, w, c], k and v [hk, wk, c]
    CONCAT,      // channels: out = [a | b]
    // The UNet generators' ops (waifu2x CUNet, Real-CUGAN). Their transposed convolutions
    // are CONV2D + PIXEL_SHUFFLE + CROP (Graph::deconv2d, engine/graph/deconv_lowering.h).
    GLOBAL_AVG_POOL,  // [h, w, c] -> [1, 1, c]: the mean of each channel
    MUL,              // out = a * b; b may be [1, 1, c] (scales every pixel's channels)
    CROP,             // out = x[top : top + h, left : left + w], every channel
    // OmniSR's ops (omni self-attention and ESA). Depthwise convolutions are CONV2D with
    // groups.
    MAX_POOL,           // windows of k x k at stride s, no padding: floor((h - k) / s) + 1
    RESIZE_BILINEAR,    // any output size; half-pixel centres (align_corners = false), clamp
    WINDOW_ATTENTION,   // qkv [h, w, 3c] -> [h, w, c]: attention among a group's pixels
    CHANNEL_ATTENTION,  // qkv [h, w, 3c] -> [h, w, c]: attention among a head's channels
};

const char* op_kind_name(OpKind kind);

// GELU is the exact (erf) form, as PyTorch's F.gelu; SILU is x * sigmoid(x); SIGMOID is
// 1 / (1 + exp(-x)).
enum class Activation { NONE, RELU, LEAKY_RELU, PRELU, SILU, GELU, SIGMOID };

// out = out * scale + residual, applied after the activation.
struct ResidualAdd {
    ValueId residual = kNoValue;
    float scale = 1.0f;
};

// Everything a convolution does after the multiply-accumulate, in order:
// y = act(conv(x) + bias); for each add: y = y * add.scale + add.residual.
struct Epilogue {
    Activation act = Activation::NONE;
    float alpha = 0.0f;              // LeakyReLU negative slope
    std::vector<float> prelu_slope;  // per output channel, for PRELU
    std::vector<ResidualAdd> adds;
};

// CONV2D: weight [out, in, kh, kw] (PyTorch OIHW); output size
// (size + 2 * padding() - kernel) / stride + 1.
// Graph::deconv2d: weight [in, out, kh, kw] (PyTorch ConvTranspose2d's IOHW); output size
// (size - 1) * stride + kernel - 2 * padding().
struct ConvWeights {
    std::shared_ptr<const std::vector<float>> weight;
    std::shared_ptr<const std::vector<float>> bias;  // [out] or null
    int out_channels = 0;
    int in_channels = 0;
    int kernel = 3;  // square kernels
    int stride = 1;
    int pad = -1;  // the same on every side; -1: kernel / 2 ("same" for odd kernels)
    // CONV2D only: weight [out, in / groups, kh, kw]; group g maps input channels
    // [g in / groups, (g + 1) in / groups) to its share of the outputs (groups == in == out:
    // depthwise).
    int groups = 1;

    int padding() const { return pad >= 0 ? pad : kernel / 2; }
};

// The output size of a convolution or transposed convolution along one axis.
int conv_output_size(int size, const ConvWeights& w);
int deconv_output_size(int size, const ConvWeights& w);

// GROUP_NORM and LAYER_NORM: y = (x - mean) / sqrt(var + eps) * gamma + beta, then act (NONE
// or SILU). Statistics are computed in fp32 with the mean subtracted before squaring.
struct NormParams {
    int groups = 1;  // GROUP_NORM only; divides the channel count
    float eps = 1e-5f;
    std::shared_ptr<const std::vector<float>> gamma;  // [c]
    std::shared_ptr<const std::vector<float>> beta;   // [c]
    Activation act = Activation::NONE;
};

// ATTENTION: c channels are `heads` heads of c / heads features each (head-major, as PyTorch's
// view(b, n, heads, d)); scale multiplies q k^T before the softmax (usually 1 / sqrt(d)).
struct AttentionParams {
    int heads = 1;
    float scale = 1.0f;
};

// WINDOW_ATTENTION and CHANNEL_ATTENTION read one [h, w, 3c] value: q, k and v are channels
// [0, c), [c, 2c) and [2c, 3c), each `heads` heads of d = c / heads channels (head-major).
// h and w are multiples of `window` (ws); gh = h / ws, gw = w / ws. The pixels fall into
// groups, and everything happens within one group and one head:
//
// WINDOW_ATTENTION (OmniSR's block and grid attention, MaxViT's): each group has n = ws * ws
// pixels, its tokens.
//   BLOCKS: the ws x ws blocks; pixel (y, x) is token (y % ws) * ws + x % ws of group
//           (y / ws, x / ws).
//   GRID:   pixels spaced (gh, gw) apart; pixel (y, x) is token (y / gh) * ws + x / gw of
//           group (y % gh, x % gw).
//   out_t = sum_u softmax_u(scale * q_t . k_u + bias[head][t][u]) v_u (bias may be null).
//
// CHANNEL_ATTENTION (OmniSR's channel attention, Restormer's transposed attention): each of
// the head's d channels is a vector over the group's n pixels.
//   BLOCKS: the ws x ws blocks (n = ws * ws).
//   GRID:   pixels sharing (y % ws, x % ws), spaced ws apart (n = gh * gw).
//   q^ = q / max(|q|, 1e-12), k^ likewise, per channel;
//   out_a = sum_b softmax_b(temperature[head] * q^_a . k^_b) v_b over the head's channels.
enum class PixelGroups { BLOCKS, GRID };

struct WindowAttentionParams {
    int window = 8;
    PixelGroups groups = PixelGroups::BLOCKS;
    int heads = 1;
    float scale = 1.0f;                                     // WINDOW_ATTENTION
    std::shared_ptr<const std::vector<float>> bias;         // WINDOW_ATTENTION: [heads, n, n]
    std::shared_ptr<const std::vector<float>> temperature;  // CHANNEL_ATTENTION: [heads]
};

// Pixels per group of a WINDOW_ATTENTION or CHANNEL_ATTENTION op over an [h, w] map.
int group_pixels(OpKind kind, const WindowAttentionParams& params, int h, int w);

struct Buffer {
    int h = 0, w = 0, c = 0;
};

struct Value {
    int buffer = -1;
    int h = 0, w = 0, c = 0;
    int c_offset = 0;
};

struct Op {
    OpKind kind = OpKind::INPUT;
    std::string name;
    std::vector<ValueId> inputs;
    ValueId output = kNoValue;
    ConvWeights conv;                      // CONV2D
    Epilogue epilogue;                     // CONV2D
    int factor = 1;                        // resampling and shuffle factor
    float scale = 1.0f;                    // ADD: scale of inputs[0]
    NormParams norm;                       // GROUP_NORM, LAYER_NORM
    Activation act = Activation::NONE;     // ACTIVATION
    AttentionParams attention;             // ATTENTION: inputs q, k, v
    int crop_top = 0, crop_left = 0;       // CROP: the output's origin in the input
    int pool_kernel = 1, pool_stride = 1;  // MAX_POOL
    WindowAttentionParams window;          // WINDOW_ATTENTION, CHANNEL_ATTENTION: input qkv
};

class Graph {
  public:
    // Inputs are numbered in the order they are declared (Plan::run_batch takes them so).
    ValueId input(int h, int w, int c);
    void output(ValueId v);
    // Drops the ops whose results never reach the output (inputs stay, in order), so a graph
    // built for part of a network (a probe of intermediate values) runs only that part.
    // Buffers left without ops take no memory in a plan.
    void drop_ops_not_reaching_output();

    // A buffer with c channels that ops write parts of; returns a view of all of it.
    ValueId buffer(int h, int w, int c);
    // A view of channels [c0, c0 + c) of v.
    ValueId channels(ValueId v, int c0, int c);

    // Writes into `into` (a view with the right shape) when given, else into a new buffer.
    ValueId conv2d(const std::string& name,
                   ValueId x,
                   ConvWeights weights,
                   Epilogue epilogue,
                   ValueId into = kNoValue);
    ValueId upsample_nearest(ValueId x, int factor);
    ValueId upsample_bilinear(ValueId x, int factor);
    ValueId resize_bicubic(ValueId x, int out_h, int out_w);
    ValueId pixel_shuffle(ValueId x, int r);
    ValueId pixel_unshuffle(ValueId x, int r);
    ValueId add(ValueId a, ValueId b, float scale_a = 1.0f);
    ValueId group_norm(const std::string& name, ValueId x, NormParams params);
    ValueId layer_norm(const std::string& name, ValueId x, NormParams params);
    ValueId activation(ValueId x, Activation act);
    ValueId geglu(ValueId x);
    ValueId attention(const std::string& name,
                      ValueId q,
                      ValueId k,
                      ValueId v,
                      AttentionParams params);
    ValueId concat(ValueId a, ValueId b);
    // A transposed convolution (PyTorch ConvTranspose2d) with an activation (no residual adds),
    // built as its sub-pixel convolution, a pixel shuffle and a crop.
    ValueId deconv2d(const std::string& name, ValueId x, ConvWeights weights, Epilogue epilogue);
    ValueId global_avg_pool(ValueId x);
    ValueId mul(ValueId a, ValueId b);
    ValueId crop(ValueId x, int top, int left, int h, int w);
    ValueId max_pool(ValueId x, int kernel, int stride);
    ValueId resize_bilinear(ValueId x, int out_h, int out_w);
    ValueId window_attention(const std::string& name, ValueId qkv, WindowAttentionParams params);
    ValueId channel_attention(const std::string& name, ValueId qkv, WindowAttentionParams params);

    const std::vector<Op>& ops() const { return ops_; }
    const std::vector<Value>& values() const { return values_; }
    const std::vector<Buffer>& buffers() const { return buffers_; }
    const Value& value(ValueId id) const;
    ValueId input_value() const { return inputs_.empty() ? kNoValue : inputs_.front(); }
    const std::vector<ValueId>& input_values() const { return inputs_; }
    ValueId output_value() const { return output_; }

    // Multiply-accumulate count x 2 of every convolution: the FLOPs of one run.
    double conv_flops() const;
    // The same for convolutions and attention (q k^T and the weighted sum of v).
    double matmul_flops() const;

  private:
    ValueId new_buffer_value(int h, int w, int c);
    ValueId push_op(Op op, ValueId out);
    ValueId upsample(OpKind kind, ValueId x, int factor);
    // ADD and MUL: b is a's shape or [1, 1, c].
    ValueId binary(OpKind kind, ValueId a, ValueId b, float scale_a);
    ValueId norm(OpKind kind, const std::string& name, ValueId x, NormParams params);
    ValueId grouped_attention(OpKind kind,
                              const std::string& name,
                              ValueId qkv,
                              WindowAttentionParams params);

    std::vector<Op> ops_;
    std::vector<Value> values_;
    std::vector<Buffer> buffers_;
    std::vector<ValueId> inputs_;
    ValueId output_ = kNoValue;
};

}  // namespace kiln::engine
