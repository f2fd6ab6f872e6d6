#include "tests/cpu/reference_graph.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

namespace kiln::test {

using engine::Activation;
using engine::Graph;
using engine::Op;
using engine::OpKind;
using engine::Value;
using engine::ValueId;

namespace {

// Buffers as dense NHWC arrays; a view reads/writes its channel range.
struct Store {
    const Graph& g;
    std::vector<std::vector<float>> buffers;

    explicit Store(const Graph& graph) : g(graph) {
        for (const auto& b : graph.buffers()) {
            buffers.emplace_back(static_cast<size_t>(b.h) * b.w * b.c, 0.0f);
        }
    }
    float& at(ValueId id, int y, int x, int c) {
        const Value& v = g.value(id);
        const int ct = g.buffers()[static_cast<size_t>(v.buffer)].c;
        return buffers[static_cast<size_t>(v.buffer)]
                      [(static_cast<size_t>(y) * v.w + x) * ct + v.c_offset + c];
    }
};

double activation(double v, Activation a, double alpha, double slope) {
    switch (a) {
        case Activation::NONE:
            return v;
        case Activation::RELU:
            return v > 0 ? v : 0;
        case Activation::LEAKY_RELU:
            return v > 0 ? v : v * alpha;
        case Activation::PRELU:
            return v > 0 ? v : v * slope;
        case Activation::SILU:
            return v / (1.0 + std::exp(-v));
        case Activation::GELU:
            return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
        case Activation::SIGMOID:
            return 1.0 / (1.0 + std::exp(-v));
    }
    return v;
}

float act(double v, const engine::Epilogue& e, int c) {
    const double slope = e.act == Activation::PRELU ? e.prelu_slope[static_cast<size_t>(c)] : 0.0;
    return static_cast<float>(activation(v, e.act, e.alpha, slope));
}

void conv(Store& s, const Op& op) {
    const Value in = s.g.value(op.inputs[0]);
    const Value out = s.g.value(op.output);
    const auto& w = *op.conv.weight;
    const int k = op.conv.kernel, pad = op.conv.padding();
    const int ci = op.conv.in_channels / op.conv.groups;  // inputs per group
    const int co = op.conv.out_channels / op.conv.groups;
    const int stride = op.conv.stride;
    std::vector<float> result(static_cast<size_t>(out.h) * out.w * out.c);
    for (int y = 0; y < out.h; ++y) {
        for (int x = 0; x < out.w; ++x) {
            for (int o = 0; o < out.c; ++o) {
                double acc = op.conv.bias ? (*op.conv.bias)[static_cast<size_t>(o)] : 0.0;
                for (int i = 0; i < ci; ++i) {
                    for (int ky = 0; ky < k; ++ky) {
                        const int sy = y * stride + ky - pad;
                        if (sy < 0 || sy >= in.h)
                            continue;
                        for (int kx = 0; kx < k; ++kx) {
                            const int sx = x * stride + kx - pad;
                            if (sx < 0 || sx >= in.w)
                                continue;
                            acc += static_cast<double>(
                                       w[((static_cast<size_t>(o) * ci + i) * k + ky) * k + kx]) *
                                   s.at(op.inputs[0], sy, sx, (o / co) * ci + i);
                        }
                    }
                }
                float v = act(acc, op.epilogue, o);
                for (const auto& add : op.epilogue.adds) {
                    v = v * add.scale + s.at(add.residual, y, x, o);
                }
                result[(static_cast<size_t>(y) * out.w + x) * out.c + o] = v;
            }
        }
    }
    for (int y = 0; y < out.h; ++y)
        for (int x = 0; x < out.w; ++x)
            for (int o = 0; o < out.c; ++o)
                s.at(op.output, y, x, o) = result[(static_cast<size_t>(y) * out.w + x) * out.c + o];
}

// ADD and MUL: out = f(a, b) in double; b is a's shape or [1, 1, c] (the same every pixel).
template <typename F>
void binary(Store& s, const Op& op, const F& f) {
    const Value out = s.g.value(op.output);
    const Value b = s.g.value(op.inputs[1]);
    const bool broadcast = b.h == 1 && b.w == 1;
    for (int y = 0; y < out.h; ++y)
        for (int x = 0; x < out.w; ++x)
            for (int c = 0; c < out.c; ++c)
                s.at(op.output, y, x, c) = static_cast<float>(
                    f(s.at(op.inputs[0], y, x, c),
                      s.at(op.inputs[1], broadcast ? 0 : y, broadcast ? 0 : x, c)));
}

// GROUP_NORM (groups > 0) and LAYER_NORM (groups == 0: each pixel its own group), in double.
void norm(Store& s, const Op& op, bool layer) {
    const Value in = s.g.value(op.inputs[0]);
    const engine::NormParams& p = op.norm;
    const int groups = layer ? 1 : p.groups;
    const int cg = in.c / groups;
    const auto finish = [&](int y, int x, int c, double mean, double var) {
        const double v = (s.at(op.inputs[0], y, x, c) - mean) / std::sqrt(var + p.eps) *
                             (*p.gamma)[static_cast<size_t>(c)] +
                         (*p.beta)[static_cast<size_t>(c)];
        s.at(op.output, y, x, c) = static_cast<float>(activation(v, p.act, 0, 0));
    };
    if (layer) {
        for (int y = 0; y < in.h; ++y) {
            for (int x = 0; x < in.w; ++x) {
                double sum = 0, sq = 0;
                for (int c = 0; c < in.c; ++c)
                    sum += s.at(op.inputs[0], y, x, c);
                const double mean = sum / in.c;
                for (int c = 0; c < in.c; ++c)
                    sq += std::pow(s.at(op.inputs[0], y, x, c) - mean, 2);
                for (int c = 0; c < in.c; ++c)
                    finish(y, x, c, mean, sq / in.c);
            }
        }
        return;
    }
    for (int g = 0; g < groups; ++g) {
        double sum = 0, sq = 0;
        const double n = static_cast<double>(in.h) * in.w * cg;
        for (int y = 0; y < in.h; ++y)
            for (int x = 0; x < in.w; ++x)
                for (int c = g * cg; c < (g + 1) * cg; ++c)
                    sum += s.at(op.inputs[0], y, x, c);
        const double mean = sum / n;
        for (int y = 0; y < in.h; ++y)
            for (int x = 0; x < in.w; ++x)
                for (int c = g * cg; c < (g + 1) * cg; ++c)
                    sq += std::pow(s.at(op.inputs[0], y, x, c) - mean, 2);
        for (int y = 0; y < in.h; ++y)
            for (int x = 0; x < in.w; ++x)
                for (int c = g * cg; c < (g + 1) * cg; ++c)
                    finish(y, x, c, mean, sq / n);
    }
}

// softmax(q k^T * scale) v per head; tokens are pixels in row-major order.
void attention(Store& s, const Op& op) {
    const Value q = s.g.value(op.inputs[0]);
    const Value k = s.g.value(op.inputs[1]);
    const int heads = op.attention.heads, d = q.c / heads;
    const int lq = q.h * q.w, lk = k.h * k.w;
    const auto at = [&](int input, int token, int c) -> double {
        const Value& v = s.g.value(op.inputs[static_cast<size_t>(input)]);
        return s.at(op.inputs[static_cast<size_t>(input)], token / v.w, token % v.w, c);
    };
    std::vector<double> p(static_cast<size_t>(lk));
    for (int h = 0; h < heads; ++h) {
        for (int i = 0; i < lq; ++i) {
            double m = -1e300;
            for (int j = 0; j < lk; ++j) {
                double dot = 0;
                for (int e = 0; e < d; ++e)
                    dot += at(0, i, h * d + e) * at(1, j, h * d + e);
                p[static_cast<size_t>(j)] = dot * op.attention.scale;
                m = std::max(m, p[static_cast<size_t>(j)]);
            }
            double sum = 0;
            for (double& v : p) {
                v = std::exp(v - m);
                sum += v;
            }
            for (int e = 0; e < d; ++e) {
                double acc = 0;
                for (int j = 0; j < lk; ++j)
                    acc += p[static_cast<size_t>(j)] * at(2, j, h * d + e);
                s.at(op.output, i / q.w, i % q.w, h * d + e) = static_cast<float>(acc / sum);
            }
        }
    }
}

// Bilinear resampling with half-pixel centres (align_corners = false), in double.
void resize_bilinear(Store& s, const Op& op) {
    const Value in = s.g.value(op.inputs[0]);
    const Value out = s.g.value(op.output);
    const double sy = static_cast<double>(in.h) / out.h, sx = static_cast<double>(in.w) / out.w;
    for (int y = 0; y < out.h; ++y) {
        for (int x = 0; x < out.w; ++x) {
            const double fy = std::max((y + 0.5) * sy - 0.5, 0.0);
            const double fx = std::max((x + 0.5) * sx - 0.5, 0.0);
            const int y0 = std::min(static_cast<int>(fy), in.h - 1);
            const int x0 = std::min(static_cast<int>(fx), in.w - 1);
            const int y1 = std::min(y0 + 1, in.h - 1), x1 = std::min(x0 + 1, in.w - 1);
            const double wy = fy - y0, wx = fx - x0;
            for (int c = 0; c < out.c; ++c) {
                const auto v = [&](int yy, int xx) {
                    return static_cast<double>(s.at(op.inputs[0], yy, xx, c));
                };
                s.at(op.output, y, x, c) =
                    static_cast<float>((v(y0, x0) * (1 - wx) + v(y0, x1) * wx) * (1 - wy) +
                                       (v(y1, x0) * (1 - wx) + v(y1, x1) * wx) * wy);
            }
        }
    }
}

void max_pool(Store& s, const Op& op) {
    const Value out = s.g.value(op.output);
    for (int y = 0; y < out.h; ++y)
        for (int x = 0; x < out.w; ++x)
            for (int c = 0; c < out.c; ++c) {
                float m = -INFINITY;
                for (int ky = 0; ky < op.pool_kernel; ++ky)
                    for (int kx = 0; kx < op.pool_kernel; ++kx)
                        m = std::max(m, s.at(op.inputs[0], y * op.pool_stride + ky,
                                             x * op.pool_stride + kx, c));
                s.at(op.output, y, x, c) = m;
            }
}

// The pixels of one group of a WINDOW_ATTENTION / CHANNEL_ATTENTION op, in token order,
// written from the definitions in graph.h.
std::vector<std::pair<int, int>> group_members(const Op& op, int h, int w, int gy, int gx) {
    const int ws = op.window.window, gh = h / ws, gw = w / ws;
    const bool grid = op.window.groups == engine::PixelGroups::GRID;
    std::vector<std::pair<int, int>> px;
    if (!grid) {  // block (gy, gx), gy < gh
        for (int a = 0; a < ws; ++a)
            for (int b = 0; b < ws; ++b)
                px.emplace_back(gy * ws + a, gx * ws + b);
    } else if (op.kind == OpKind::WINDOW_ATTENTION) {  // (y % gh, x % gw) == (gy, gx)
        for (int a = 0; a < ws; ++a)
            for (int b = 0; b < ws; ++b)
                px.emplace_back(a * gh + gy, b * gw + gx);
    } else {  // (y % ws, x % ws) == (gy, gx)
        for (int a = 0; a < gh; ++a)
            for (int b = 0; b < gw; ++b)
                px.emplace_back(a * ws + gy, b * ws + gx);
    }
    return px;
}

// Softmax of logits in place, in double.
void softmax(std::vector<double>& p) {
    double m = -1e300, sum = 0;
    for (double v : p)
        m = std::max(m, v);
    for (double& v : p) {
        v = std::exp(v - m);
        sum += v;
    }
    for (double& v : p)
        v /= sum;
}

void grouped_attention(Store& s, const Op& op) {
    const Value out = s.g.value(op.output);
    const int c = out.c, heads = op.window.heads, d = c / heads, ws = op.window.window;
    const bool channel = op.kind == OpKind::CHANNEL_ATTENTION;
    const bool grid = op.window.groups == engine::PixelGroups::GRID;
    // Group grid: blocks (h/ws x w/ws), window-attention grid groups (h/ws x w/ws) too,
    // channel-attention grid groups (ws x ws).
    const int ny = channel && grid ? ws : out.h / ws, nx = channel && grid ? ws : out.w / ws;
    const auto qkv = [&](const std::pair<int, int>& p, int ch) -> double {
        return s.at(op.inputs[0], p.first, p.second, ch);
    };
    for (int gy = 0; gy < ny; ++gy) {
        for (int gx = 0; gx < nx; ++gx) {
            const auto px = group_members(op, out.h, out.w, gy, gx);
            const int n = static_cast<int>(px.size());
            for (int hd = 0; hd < heads; ++hd) {
                const int c0 = hd * d;
                if (!channel) {
                    std::vector<double> p(static_cast<size_t>(n));
                    for (int t = 0; t < n; ++t) {
                        for (int u = 0; u < n; ++u) {
                            double dot = 0;
                            for (int e = 0; e < d; ++e)
                                dot += qkv(px[t], c0 + e) * qkv(px[u], c + c0 + e);
                            double bias = 0;
                            if (op.window.bias)
                                bias = (*op.window.bias)[(static_cast<size_t>(hd) * n + t) * n + u];
                            p[static_cast<size_t>(u)] = dot * op.window.scale + bias;
                        }
                        softmax(p);
                        for (int e = 0; e < d; ++e) {
                            double acc = 0;
                            for (int u = 0; u < n; ++u)
                                acc += p[static_cast<size_t>(u)] * qkv(px[u], 2 * c + c0 + e);
                            s.at(op.output, px[t].first, px[t].second, c0 + e) =
                                static_cast<float>(acc);
                        }
                    }
                    continue;
                }
                const auto norm = [&](int ch) {
                    double sq = 0;
                    for (const auto& q : px)
                        sq += qkv(q, ch) * qkv(q, ch);
                    return std::max(std::sqrt(sq), 1e-12);
                };
                const double t = (*op.window.temperature)[static_cast<size_t>(hd)];
                std::vector<double> p(static_cast<size_t>(d));
                for (int a = 0; a < d; ++a) {
                    const double na = norm(c0 + a);
                    for (int b = 0; b < d; ++b) {
                        double dot = 0;
                        for (const auto& q : px)
                            dot += qkv(q, c0 + a) * qkv(q, c + c0 + b);
                        p[static_cast<size_t>(b)] = dot / (na * norm(c + c0 + b)) * t;
                    }
                    softmax(p);
                    for (const auto& q : px) {
                        double acc = 0;
                        for (int b = 0; b < d; ++b)
                            acc += p[static_cast<size_t>(b)] * qkv(q, 2 * c + c0 + b);
                        s.at(op.output, q.first, q.second, c0 + a) = static_cast<float>(acc);
                    }
                }
            }
        }
    }
}

}  // namespace

std::vector<float> run_reference(const Graph& graph, const std::vector<float>& input) {
    return run_reference(graph, std::vector<std::vector<float>>{input});
}

std::vector<float> run_reference(const Graph& graph,
                                 const std::vector<std::vector<float>>& inputs) {
    Store s(graph);
    std::vector<float> output;
    size_t next_input = 0;
    for (const Op& op : graph.ops()) {
        const Value out = graph.value(op.output);
        switch (op.kind) {
            case OpKind::INPUT:
                if (next_input >= inputs.size())
                    throw std::invalid_argument("reference: too few inputs");
                s.buffers[static_cast<size_t>(out.buffer)] = inputs[next_input++];
                break;
            case OpKind::OUTPUT: {
                const Value in = graph.value(op.inputs[0]);
                for (int y = 0; y < in.h; ++y)
                    for (int x = 0; x < in.w; ++x)
                        for (int c = 0; c < in.c; ++c)
                            output.push_back(s.at(op.inputs[0], y, x, c));
                break;
            }
            case OpKind::CONV2D:
                conv(s, op);
                break;
            case OpKind::UPSAMPLE_NEAREST:
                for (int y = 0; y < out.h; ++y)
                    for (int x = 0; x < out.w; ++x)
                        for (int c = 0; c < out.c; ++c)
                            s.at(op.output, y, x, c) =
                                s.at(op.inputs[0], y / op.factor, x / op.factor, c);
                break;
            case OpKind::UPSAMPLE_BILINEAR:  // the resize to factor x the size
            case OpKind::RESIZE_BILINEAR:
                resize_bilinear(s, op);
                break;
            case OpKind::RESIZE_BICUBIC: {
                // Keys' cubic (A = -0.75) written out directly, in double, with edge clamping.
                const Value in = graph.value(op.inputs[0]);
                const auto kernel = [](double d) {
                    const double a = -0.75;
                    d = std::abs(d);
                    if (d <= 1)
                        return ((a + 2) * d - (a + 3)) * d * d + 1;
                    if (d < 2)
                        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
                    return 0.0;
                };
                for (int y = 0; y < out.h; ++y) {
                    const double fy = (y + 0.5) * in.h / out.h - 0.5;
                    for (int x = 0; x < out.w; ++x) {
                        const double fx = (x + 0.5) * in.w / out.w - 0.5;
                        for (int c = 0; c < out.c; ++c) {
                            double acc = 0;
                            for (int sy = static_cast<int>(std::floor(fy)) - 1;
                                 sy <= static_cast<int>(std::floor(fy)) + 2; ++sy) {
                                for (int sx = static_cast<int>(std::floor(fx)) - 1;
                                     sx <= static_cast<int>(std::floor(fx)) + 2; ++sx) {
                                    const int cy = std::clamp(sy, 0, in.h - 1);
                                    const int cx = std::clamp(sx, 0, in.w - 1);
                                    acc += kernel(fy - sy) * kernel(fx - sx) *
                                           s.at(op.inputs[0], cy, cx, c);
                                }
                            }
                            s.at(op.output, y, x, c) = static_cast<float>(acc);
                        }
                    }
                }
                break;
            }
            case OpKind::PIXEL_SHUFFLE: {
                const int r = op.factor;
                for (int y = 0; y < out.h; ++y)
                    for (int x = 0; x < out.w; ++x)
                        for (int c = 0; c < out.c; ++c)
                            s.at(op.output, y, x, c) =
                                s.at(op.inputs[0], y / r, x / r, c * r * r + (y % r) * r + x % r);
                break;
            }
            case OpKind::PIXEL_UNSHUFFLE: {
                const int r = op.factor;
                for (int y = 0; y < out.h; ++y)
                    for (int x = 0; x < out.w; ++x)
                        for (int c = 0; c < out.c; ++c) {
                            const int src_c = c / (r * r), i = (c % (r * r)) / r, j = c % r;
                            s.at(op.output, y, x, c) =
                                s.at(op.inputs[0], y * r + i, x * r + j, src_c);
                        }
                break;
            }
            case OpKind::ADD: {
                const double scale = op.scale;
                binary(s, op, [scale](double a, double b) { return a * scale + b; });
                break;
            }
            case OpKind::GROUP_NORM:
            case OpKind::LAYER_NORM:
                norm(s, op, op.kind == OpKind::LAYER_NORM);
                break;
            case OpKind::ACTIVATION:
                for (int y = 0; y < out.h; ++y)
                    for (int x = 0; x < out.w; ++x)
                        for (int c = 0; c < out.c; ++c)
                            s.at(op.output, y, x, c) = static_cast<float>(
                                activation(s.at(op.inputs[0], y, x, c), op.act, 0, 0));
                break;
            case OpKind::GEGLU:
                for (int y = 0; y < out.h; ++y)
                    for (int x = 0; x < out.w; ++x)
                        for (int c = 0; c < out.c; ++c)
                            s.at(op.output, y, x, c) =
                                static_cast<float>(s.at(op.inputs[0], y, x, c) *
                                                   activation(s.at(op.inputs[0], y, x, out.c + c),
                                                              Activation::GELU, 0, 0));
                break;
            case OpKind::ATTENTION:
                attention(s, op);
                break;
            case OpKind::GLOBAL_AVG_POOL: {
                const Value in = graph.value(op.inputs[0]);
                for (int c = 0; c < out.c; ++c) {
                    double sum = 0;
                    for (int y = 0; y < in.h; ++y)
                        for (int x = 0; x < in.w; ++x)
                            sum += s.at(op.inputs[0], y, x, c);
                    s.at(op.output, 0, 0, c) =
                        static_cast<float>(sum / (static_cast<double>(in.h) * in.w));
                }
                break;
            }
            case OpKind::MUL:
                binary(s, op, [](double a, double b) { return a * b; });
                break;
            case OpKind::CROP:
                for (int y = 0; y < out.h; ++y)
                    for (int x = 0; x < out.w; ++x)
                        for (int c = 0; c < out.c; ++c)
                            s.at(op.output, y, x, c) =
                                s.at(op.inputs[0], y + op.crop_top, x + op.crop_left, c);
                break;
            case OpKind::MAX_POOL:
                max_pool(s, op);
                break;
            case OpKind::WINDOW_ATTENTION:
            case OpKind::CHANNEL_ATTENTION:
                grouped_attention(s, op);
                break;
            case OpKind::CONCAT: {
                const int ca = graph.value(op.inputs[0]).c;
                for (int y = 0; y < out.h; ++y)
                    for (int x = 0; x < out.w; ++x)
                        for (int c = 0; c < out.c; ++c)
                            s.at(op.output, y, x, c) = c < ca ? s.at(op.inputs[0], y, x, c)
                                                              : s.at(op.inputs[1], y, x, c - ca);
                break;
            }
        }
    }
    return output;
}

}  // namespace kiln::test
