// OmniSR's grouped attentions' host-device code on the CPU (kernels/window_math.h,
// window_attention_body.h, channel_attention_body.h): the pixel-group maps against the
// definitions in engine/graph/graph.h (every pixel in exactly one group, at the token the
// definition gives it), the warp reductions' combination order, and the kernels' walks
// (every block's loads, each lane's or thread's steps, the chunks of a grid group) against
// double references from the same fp16 inputs, on channel views of wider buffers, writing
// every output element and nothing outside the output view.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/channel_attention_body.h"
#include "kernels/window_attention_body.h"
#include "kernels/window_math.h"

namespace kiln::kernels {
namespace {

constexpr uint16_t kSentinel = 0x7e00;  // a NaN no op produces from finite inputs

const char* layout_name(GroupLayout l) {
    return l == GroupLayout::BLOCKS        ? "blocks"
           : l == GroupLayout::WINDOW_GRID ? "window grid"
                                           : "channel grid";
}

// (group, token) of pixel (y, x), written from the definitions in engine/graph/graph.h.
struct Place {
    int group, token;
};

Place place_of(GroupLayout layout, int h, int w, int ws, int y, int x) {
    const int gh = h / ws, gw = w / ws;
    switch (layout) {
        case GroupLayout::BLOCKS:  // block (y / ws, x / ws), token (y % ws) * ws + x % ws
            return {(y / ws) * gw + x / ws, (y % ws) * ws + x % ws};
        case GroupLayout::WINDOW_GRID:  // group (y % gh, x % gw), token (y / gh) * ws + x / gw
            return {(y % gh) * gw + x % gw, (y / gh) * ws + x / gw};
        case GroupLayout::CHANNEL_GRID:  // pixels sharing (y % ws, x % ws), spaced ws apart
            return {(y % ws) * ws + x % ws, (y / ws) * gw + x / ws};
    }
    return {-1, -1};
}

TEST(WindowMath, GroupMapsFollowTheGraphDefinitions) {
    struct Shape {
        int h, w, ws;
    };
    for (const Shape s : {Shape{8, 8, 8}, Shape{16, 24, 4}, Shape{24, 16, 8}, Shape{40, 56, 4},
                          Shape{6, 9, 3}, Shape{5, 5, 1}, Shape{64, 64, 8}}) {
        for (const GroupLayout layout :
             {GroupLayout::BLOCKS, GroupLayout::WINDOW_GRID, GroupLayout::CHANNEL_GRID}) {
            const PixelGroupMap m = pixel_group_map(layout, s.h, s.w, s.ws);
            const std::string what = std::string(layout_name(layout)) + " " + std::to_string(s.h) +
                                     "x" + std::to_string(s.w) + " ws" + std::to_string(s.ws);
            ASSERT_EQ(int64_t{m.count()} * m.members(), int64_t{s.h} * s.w) << what;
            const int gh = s.h / s.ws, gw = s.w / s.ws;
            EXPECT_EQ(m.members(), layout == GroupLayout::CHANNEL_GRID ? gh * gw : s.ws * s.ws);
            std::vector<int> seen(static_cast<size_t>(s.h) * s.w, 0);
            for (int y = 0; y < s.h; ++y) {
                for (int x = 0; x < s.w; ++x) {
                    const Place p = place_of(layout, s.h, s.w, s.ws, y, x);
                    ASSERT_GE(p.group, 0);
                    ASSERT_LT(p.group, m.count());
                    ASSERT_GE(p.token, 0);
                    ASSERT_LT(p.token, m.members());
                    ASSERT_EQ(m.pixel(p.group, p.token), int64_t{y} * s.w + x)
                        << what << " pixel " << y << "," << x;
                }
            }
            for (int g = 0; g < m.count(); ++g)
                for (int t = 0; t < m.members(); ++t)
                    ++seen[static_cast<size_t>(m.pixel(g, t))];
            for (const int k : seen)
                ASSERT_EQ(k, 1) << what;
        }
    }
    EXPECT_EQ(group_layout(false, false), GroupLayout::BLOCKS);
    EXPECT_EQ(group_layout(true, false), GroupLayout::BLOCKS);
    EXPECT_EQ(group_layout(false, true), GroupLayout::WINDOW_GRID);
    EXPECT_EQ(group_layout(true, true), GroupLayout::CHANNEL_GRID);
}

TEST(WindowMath, ButterflyReductionsCombineEveryLane) {
    float lanes[kWarpLanes];
    for (int l = 0; l < kWarpLanes; ++l)
        lanes[l] = static_cast<float>(l + 1);
    EXPECT_EQ(butterfly_sum(lanes), 528.0f);
    EXPECT_EQ(butterfly_max(lanes), 32.0f);
    lanes[7] = 1e30f;
    EXPECT_EQ(butterfly_max(lanes), 1e30f);
    for (float& v : lanes)
        v = -INFINITY;
    lanes[3] = -2.0f;
    EXPECT_EQ(butterfly_max(lanes), -2.0f);
    // The pairing order (lane l with l ^ 16, then ^ 8, ...) is not a left fold: here the fold
    // would give 1e-8, the butterfly loses it in l0 + l16 first.
    float mixed[kWarpLanes] = {};
    mixed[0] = 1.0f;
    mixed[16] = 1e-8f;
    mixed[1] = -1.0f;
    EXPECT_EQ(butterfly_sum(mixed), (1.0f + 1e-8f) + -1.0f);
}

TEST(WindowMath, SharedMemoryFitsOmniSR) {
    // OmniSR: window 8 (64 tokens), heads of 16 channels.
    EXPECT_EQ(window_attention_smem_bytes(64, 16), (64u * 16 * 3 + 64 + 4 * 64) * 4);
    EXPECT_LT(window_attention_smem_bytes(64, 16), 14u * 1024);
    EXPECT_TRUE(window_attention_fits(64, 16));
    EXPECT_TRUE(window_attention_fits(64, 32));
    EXPECT_TRUE(window_attention_fits(144, 16));   // window 12
    EXPECT_FALSE(window_attention_fits(256, 16));  // window 16: 53 KiB
    EXPECT_FALSE(window_attention_fits(0, 16));
    EXPECT_EQ(channel_attention_smem_bytes(16), (64u * 32 + 16 * 17 + 32) * 4);
    EXPECT_TRUE(channel_attention_fits(16));
    EXPECT_TRUE(channel_attention_fits(32));
    EXPECT_FALSE(channel_attention_fits(64));
    // The items of the channel kernel's first phase land in distinct slots.
    for (const int d : {1, 3, 8, 16, 24}) {
        std::vector<int> used(static_cast<size_t>(channel_attention_smem_floats(d)), 0);
        for (int i = 0; i < channel_items(d); ++i)
            ++used[static_cast<size_t>(channel_item_slot(d, i))];
        for (const int u : used)
            ASSERT_LE(u, 1) << d;
    }
}

// An fp16 NHWC buffer filled with random values in [-amp, amp]; unwritten elements keep
// whatever the filler put there.
struct Buffer {
    int h, w, c_total;
    std::vector<uint16_t> data;

    Buffer(int h_, int w_, int c_total_, uint16_t fill) : h(h_), w(w_), c_total(c_total_) {
        data.assign(static_cast<size_t>(h) * w * c_total, fill);
    }
    void randomize(uint32_t seed, float amp) {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<float> dist(-amp, amp);
        for (uint16_t& v : data)
            v = core::float_to_half(dist(rng));
    }
    DeviceView view(int c, int c_offset) { return {data.data(), {h, w, c, c_total, c_offset}}; }
    double at(const DeviceView& v, int64_t pixel, int ch) const {
        return core::half_to_float(data[static_cast<size_t>(v.desc.pixel_offset(pixel, ch))]);
    }
};

struct AttnCase {
    const char* name;
    int h, w, ws, heads, d;
    bool grid;
    int qkv_total, qkv_offset;  // qkv: 3c channels at qkv_offset of qkv_total
    int out_total, out_offset;
    float amp;  // inputs in [-amp, amp]
};

// Every element of the output view written (no sentinel left), nothing outside it.
void expect_written_exactly(const Buffer& out, const DeviceView& ov, const char* name) {
    for (size_t i = 0; i < out.data.size(); ++i) {
        const int ch = static_cast<int>(i % static_cast<size_t>(out.c_total));
        const bool inside = ch >= ov.desc.c_offset && ch < ov.desc.c_offset + ov.desc.c;
        if (inside)
            ASSERT_NE(out.data[i], kSentinel) << name << " left element " << i;
        else
            ASSERT_EQ(out.data[i], kSentinel) << name << " wrote element " << i;
    }
}

const AttnCase kWindowCases[] = {
    {"OmniSR blocks ws8 16x24 c64 4 heads", 16, 24, 8, 4, 16, false, 192, 0, 64, 0, 1.0f},
    {"OmniSR grid ws8 16x24 c64 4 heads", 16, 24, 8, 4, 16, true, 192, 0, 64, 0, 1.0f},
    {"blocks ws4 12x8 3 heads of 8, slices", 12, 8, 4, 3, 8, false, 80, 5, 40, 11, 2.0f},
    {"grid ws4 8x12 2 heads of 5, slices", 8, 12, 4, 2, 5, true, 33, 2, 17, 3, 2.0f},
    {"grid ws6 12x18 1 head of 40 (n 36, d > 32)", 12, 18, 6, 1, 40, true, 120, 0, 40, 0, 1.0f},
};

TEST(WindowAttentionBody, WalkMatchesDoubleReference) {
    for (const AttnCase& t : kWindowCases) {
        for (const bool with_bias : {true, false}) {
            const int c = t.heads * t.d, n = t.ws * t.ws;
            Buffer qkv(t.h, t.w, t.qkv_total, 0), out(t.h, t.w, t.out_total, kSentinel);
            qkv.randomize(81, t.amp);
            const DeviceView qv = qkv.view(3 * c, t.qkv_offset);
            const DeviceView ov = out.view(c, t.out_offset);
            std::vector<float> bias(static_cast<size_t>(t.heads) * n * n);
            std::mt19937 rng(82);
            std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
            for (float& b : bias)
                b = dist(rng);
            WindowAttentionArgs args;
            args.window = t.ws;
            args.grid = t.grid;
            args.heads = t.heads;
            args.scale = 1.0f / std::sqrt(static_cast<float>(t.d));
            args.bias = with_bias ? bias.data() : nullptr;
            const WindowAttnParams p = make_window_attn_params(qv, ov, args);
            ASSERT_EQ(p.n, n);
            ASSERT_EQ(p.d, t.d);
            ASSERT_EQ(p.map.count(), (t.h / t.ws) * (t.w / t.ws));
            std::vector<float> smem(static_cast<size_t>(window_attention_smem_floats(n, t.d)));
            window_attention_host(p, smem.data());
            expect_written_exactly(out, ov, t.name);

            // softmax(scale q k^T + bias) v per group and head, in double.
            double worst = 0.0;
            for (int g = 0; g < p.map.count(); ++g) {
                for (int head = 0; head < t.heads; ++head) {
                    const int c0 = head * t.d;
                    for (int q = 0; q < n; ++q) {
                        const int64_t pq = p.map.pixel(g, q);
                        std::vector<double> s(static_cast<size_t>(n));
                        double m = -1e300;
                        for (int u = 0; u < n; ++u) {
                            const int64_t pu = p.map.pixel(g, u);
                            double dot = 0.0;
                            for (int j = 0; j < t.d; ++j)
                                dot += qkv.at(qv, pq, c0 + j) * qkv.at(qv, pu, c + c0 + j);
                            s[static_cast<size_t>(u)] =
                                dot * args.scale +
                                (with_bias ? bias[(static_cast<size_t>(head) * n + q) * n +
                                                  static_cast<size_t>(u)]
                                           : 0.0);
                            m = std::max(m, s[static_cast<size_t>(u)]);
                        }
                        double sum = 0.0;
                        for (double& v : s) {
                            v = std::exp(v - m);
                            sum += v;
                        }
                        for (int j = 0; j < t.d; ++j) {
                            double acc = 0.0;
                            for (int u = 0; u < n; ++u)
                                acc += s[static_cast<size_t>(u)] *
                                       qkv.at(qv, p.map.pixel(g, u), 2 * c + c0 + j);
                            const double ref = acc / sum;
                            const double got = out.at(ov, pq, c0 + j);
                            worst = std::max(worst, std::abs(got - ref));
                            // fp16 storage of the output (2^-11 relative) and fp32 math.
                            ASSERT_NEAR(got, ref, std::abs(ref) * 1e-3 + 1e-4 * t.amp)
                                << t.name << (with_bias ? " bias" : "") << " group " << g
                                << " head " << head << " token " << q << " dim " << j;
                        }
                    }
                }
            }
            EXPECT_LT(worst, 2e-3 * t.amp) << t.name;
        }
    }
}

// A uniform row (q = 0, no bias) averages v over the group exactly as a mean: every token
// of the group gets the same output, which checks the token -> pixel map of the loads and the
// stores against each other.
TEST(WindowAttentionBody, ZeroQueriesAverageTheGroup) {
    const int h = 8, w = 12, ws = 4, c = 8;
    Buffer qkv(h, w, 3 * c, 0), out(h, w, c, kSentinel);
    qkv.randomize(83, 1.0f);
    const DeviceView qv = qkv.view(3 * c, 0), ov = out.view(c, 0);
    for (int64_t px = 0; px < int64_t{h} * w; ++px)
        for (int ch = 0; ch < c; ++ch)
            qkv.data[static_cast<size_t>(qv.desc.pixel_offset(px, ch))] = 0;
    for (const bool grid : {false, true}) {
        WindowAttentionArgs args;
        args.window = ws;
        args.grid = grid;
        args.heads = 2;
        const WindowAttnParams p = make_window_attn_params(qv, ov, args);
        std::vector<float> smem(static_cast<size_t>(window_attention_smem_floats(p.n, p.d)));
        window_attention_host(p, smem.data());
        for (int g = 0; g < p.map.count(); ++g)
            for (int ch = 0; ch < c; ++ch) {
                double mean = 0.0;
                for (int t = 0; t < p.n; ++t)
                    mean += qkv.at(qv, p.map.pixel(g, t), 2 * c + ch);
                mean /= p.n;
                for (int t = 0; t < p.n; ++t)
                    ASSERT_NEAR(out.at(ov, p.map.pixel(g, t), ch), mean, 1e-3)
                        << (grid ? "grid" : "blocks") << " group " << g << " token " << t;
            }
    }
}

const AttnCase kChannelCases[] = {
    {"OmniSR blocks ws8 16x24 c64 4 heads", 16, 24, 8, 4, 16, false, 192, 0, 64, 0, 1.0f},
    {"OmniSR grid ws8 64x40 c64 4 heads (n 40)", 64, 40, 8, 4, 16, true, 192, 0, 64, 0, 1.0f},
    {"grid ws4 40x56 3 heads of 8 (n 140: chunks 64, 64, 12), slices", 40, 56, 4, 3, 8, true, 80, 5,
     40, 11, 2.0f},
    {"grid ws2 24x34 2 heads of 5 (n 204), slices", 24, 34, 2, 2, 5, true, 33, 2, 17, 3, 1.0f},
    {"blocks ws4 16x20 1 head of 32", 16, 20, 4, 1, 32, false, 96, 0, 32, 0, 1.0f},
    {"grid ws8 128x128 c16 1 head (n 256)", 128, 128, 8, 1, 16, true, 48, 0, 16, 0, 1.0f},
};

TEST(ChannelAttentionBody, WalkMatchesDoubleReference) {
    for (const AttnCase& t : kChannelCases) {
        const int c = t.heads * t.d;
        Buffer qkv(t.h, t.w, t.qkv_total, 0), out(t.h, t.w, t.out_total, kSentinel);
        qkv.randomize(91, t.amp);
        const DeviceView qv = qkv.view(3 * c, t.qkv_offset);
        const DeviceView ov = out.view(c, t.out_offset);
        std::vector<float> temperature(static_cast<size_t>(t.heads));
        for (int hd = 0; hd < t.heads; ++hd)
            temperature[static_cast<size_t>(hd)] = 0.5f + 1.5f * static_cast<float>(hd);
        ChannelAttentionArgs args;
        args.window = t.ws;
        args.grid = t.grid;
        args.heads = t.heads;
        args.temperature = temperature.data();
        const ChannelAttnParams p = make_channel_attn_params(qv, ov, args);
        ASSERT_EQ(p.n, t.grid ? (t.h / t.ws) * (t.w / t.ws) : t.ws * t.ws);
        std::vector<float> smem(static_cast<size_t>(channel_attention_smem_floats(t.d)));
        channel_attention_host(p, smem.data());
        expect_written_exactly(out, ov, t.name);

        double worst = 0.0;
        for (int g = 0; g < p.map.count(); ++g) {
            for (int head = 0; head < t.heads; ++head) {
                const int c0 = head * t.d;
                const auto norm = [&](int ch) {
                    double sq = 0.0;
                    for (int k = 0; k < p.n; ++k) {
                        const double v = qkv.at(qv, p.map.pixel(g, k), ch);
                        sq += v * v;
                    }
                    return std::max(std::sqrt(sq), 1e-12);
                };
                for (int a = 0; a < t.d; ++a) {
                    std::vector<double> s(static_cast<size_t>(t.d));
                    double m = -1e300;
                    for (int b = 0; b < t.d; ++b) {
                        double dot = 0.0;
                        for (int k = 0; k < p.n; ++k) {
                            const int64_t px = p.map.pixel(g, k);
                            dot += qkv.at(qv, px, c0 + a) * qkv.at(qv, px, c + c0 + b);
                        }
                        s[static_cast<size_t>(b)] = dot / (norm(c0 + a) * norm(c + c0 + b)) *
                                                    temperature[static_cast<size_t>(head)];
                        m = std::max(m, s[static_cast<size_t>(b)]);
                    }
                    double sum = 0.0;
                    for (double& v : s) {
                        v = std::exp(v - m);
                        sum += v;
                    }
                    for (int k = 0; k < p.n; ++k) {
                        const int64_t px = p.map.pixel(g, k);
                        double acc = 0.0;
                        for (int b = 0; b < t.d; ++b)
                            acc += s[static_cast<size_t>(b)] / sum * qkv.at(qv, px, 2 * c + c0 + b);
                        const double got = out.at(ov, px, c0 + a);
                        worst = std::max(worst, std::abs(got - acc));
                        ASSERT_NEAR(got, acc, std::abs(acc) * 1e-3 + 1e-4 * t.amp)
                            << t.name << " group " << g << " head " << head << " channel " << a
                            << " pixel " << px;
                    }
                }
            }
        }
        EXPECT_LT(worst, 2e-3 * t.amp) << t.name;
    }
}

// A zero channel (norm 0) is normalised by the 1e-12 floor, as F.normalize: its logits are 0,
// never NaN.
TEST(ChannelAttentionBody, ZeroChannelsStayFinite) {
    const int h = 8, w = 8, ws = 4, c = 4;
    Buffer qkv(h, w, 3 * c, 0), out(h, w, c, kSentinel);
    qkv.randomize(92, 1.0f);
    const DeviceView qv = qkv.view(3 * c, 0), ov = out.view(c, 0);
    for (int64_t px = 0; px < int64_t{h} * w; ++px) {
        qkv.data[static_cast<size_t>(qv.desc.pixel_offset(px, 1))] = 0;      // q channel 1
        qkv.data[static_cast<size_t>(qv.desc.pixel_offset(px, c + 2))] = 0;  // k channel 2
    }
    const float temperature = 1.0f;
    ChannelAttentionArgs args;
    args.window = ws;
    args.grid = true;
    args.heads = 1;
    args.temperature = &temperature;
    const ChannelAttnParams p = make_channel_attn_params(qv, ov, args);
    std::vector<float> smem(static_cast<size_t>(channel_attention_smem_floats(c)));
    channel_attention_host(p, smem.data());
    for (int64_t px = 0; px < int64_t{h} * w; ++px) {
        for (int ch = 0; ch < c; ++ch)
            ASSERT_TRUE(std::isfinite(out.at(ov, px, ch))) << px << " " << ch;
        // q channel 1 is zero: uniform weights, the mean of the pixel's v channels.
        double mean = 0.0;
        for (int b = 0; b < c; ++b)
            mean += qkv.at(qv, px, 2 * c + b) / c;
        ASSERT_NEAR(out.at(ov, px, 1), mean, 1e-3);
    }
}

}  // namespace
}  // namespace kiln::kernels
