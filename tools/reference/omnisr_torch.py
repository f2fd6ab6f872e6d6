#!/usr/bin/python3
"""OmniSR (Wang et al., CVPR 2023, "Omni Aggregation Networks for Lightweight Image
Super-Resolution") in PyTorch, written here from the published description, with the
parameter names of the published checkpoints (e.g. 4x_WTP_descreenton.pth): kiln's
independent reference for this network (tests/reference/omnisr_vs_torch.py).

    /usr/bin/python3 tools/reference/omnisr_torch.py --weights models/4x_WTP_descreenton.pth \
        --input tests/data/reference/chelsea-fur-32.png --output /tmp/out.npy [--png /tmp/out.png]

The network: a 3x3 convolution to num_feat channels; res_num OSAG groups; a 3x3
convolution plus the first convolution's output; a 3x3 convolution to 3 scale^2 channels and
a pixel shuffle. The image is padded with zeros (bottom, right) to a multiple of the window
and the output cropped back to scale x its size. An OSAG group is block_num OSA blocks, a
1x1 convolution, plus the group's input, then ESA. An OSA block (layer.0 .. layer.12):
MBConv with squeeze-excitation; block window attention (nn.LayerNorm eps 1e-5, relative
position bias); gated feed-forward; block channel attention; gated feed-forward; grid
window attention; gated feed-forward; grid channel attention; gated feed-forward (each of
the convolutional branches behind OmniSR's LayerNorm2d, eps 1e-6, and each with a residual).

Every hyper-parameter comes from tensor shapes (config_from_state). ESA needs at least 15
pixels a side after the padding to a multiple of the window, so the input must be at least
9 pixels a side with ws = 8 (it is padded to 16). GELU is the exact (erf) one.

Pure PyTorch (no einops); float64 capable (model.to(torch.float64)).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


# --- layer norms -------------------------------------------------------------------------

class LayerNorm2d(nn.Module):
    """Normalise each pixel of [b, c, h, w] over its channels (biased variance)."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(dim=1, keepdim=True)
        var = (x - mu).pow(2).mean(dim=1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PreNormResidual(nn.Module):
    """fn(LayerNorm(x)) + x on channels-last tokens."""

    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x)) + x


class ConvPreNormResidual(nn.Module):
    """fn(LayerNorm2d(x)) + x on [b, c, h, w]."""

    def __init__(self, dim, fn):
        super().__init__()
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x)) + x


# --- MBConv ------------------------------------------------------------------------------

class MeanHW(nn.Module):
    """[b, c, h, w] -> [b, c], the mean over the pixels."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


class SqueezeExcitation(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        # gate.0 mean, gate.1 Linear, gate.2 SiLU, gate.3 Linear, gate.4 sigmoid
        self.gate = nn.Sequential(MeanHW(), nn.Linear(dim, hidden, bias=False), nn.SiLU(),
                                  nn.Linear(hidden, dim, bias=False), nn.Sigmoid())

    def forward(self, x):
        g = self.gate(x)
        return x * g[:, :, None, None]


class MBConvResidual(nn.Module):
    """fn(x) + x, fn = 1x1 conv, GELU, depthwise 3x3, GELU, squeeze-excitation, 1x1 conv."""

    def __init__(self, dim, se_hidden):
        super().__init__()
        self.fn = nn.Sequential(
            nn.Conv2d(dim, dim, 1, 1, 0, bias=True),
            nn.GELU(),
            nn.Conv2d(dim, dim, 3, 1, 1, groups=dim, bias=True),
            nn.GELU(),
            SqueezeExcitation(dim, se_hidden),
            nn.Conv2d(dim, dim, 1, 1, 0, bias=True),
        )

    def forward(self, x):
        return self.fn(x) + x


# --- window partitions (parameter-free) --------------------------------------------------
# Tokens are [b, gy, gx, w1, w2, d]: window (gy, gx) of the grid, position (w1, w2) in it.

class BlockPartition(nn.Module):
    """[b, d, H, W] -> windows of ws x ws contiguous pixels: pixel (gy*ws + w1, gx*ws + w2)."""

    def __init__(self, ws):
        super().__init__()
        self.ws = ws

    def forward(self, x):
        b, d, h, w = x.shape
        ws = self.ws
        x = x.reshape(b, d, h // ws, ws, w // ws, ws)
        return x.permute(0, 2, 4, 3, 5, 1).contiguous()


class BlockMerge(nn.Module):
    def forward(self, t):
        b, gy, gx, w1, w2, d = t.shape
        return t.permute(0, 5, 1, 3, 2, 4).reshape(b, d, gy * w1, gx * w2)


class GridPartition(nn.Module):
    """[b, d, H, W] -> ws x ws groups spread over the image: pixel (w1*gh + gy, w2*gw + gx)
    is token (w1, w2) of group (gy, gx), gh = H / ws, gw = W / ws."""

    def __init__(self, ws):
        super().__init__()
        self.ws = ws

    def forward(self, x):
        b, d, h, w = x.shape
        ws = self.ws
        x = x.reshape(b, d, ws, h // ws, ws, w // ws)
        return x.permute(0, 3, 5, 2, 4, 1).contiguous()


class GridMerge(nn.Module):
    def forward(self, t):
        b, gy, gx, w1, w2, d = t.shape
        return t.permute(0, 5, 3, 1, 4, 2).reshape(b, d, w1 * gy, w2 * gx)


# --- attentions --------------------------------------------------------------------------

def relative_position_index(ws):
    """[ws^2, ws^2] index into the (2ws-1)^2-row bias table, tokens row-major in the window."""
    pos = torch.arange(ws)
    a = pos.view(ws, 1).expand(ws, ws).reshape(-1)  # row of each token
    c = pos.view(1, ws).expand(ws, ws).reshape(-1)  # column of each token
    da = a.view(-1, 1) - a.view(1, -1) + (ws - 1)
    dc = c.view(-1, 1) - c.view(1, -1) + (ws - 1)
    return da * (2 * ws - 1) + dc


class WindowAttention(nn.Module):
    """Multi-head self-attention within each window of [b, gy, gx, w1, w2, d] tokens, with
    a learnt relative position bias."""

    def __init__(self, dim, heads, ws):
        super().__init__()
        self.heads = heads
        self.dim_head = dim // heads
        self.scale = self.dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim, bias=False))
        self.rel_pos_bias = nn.Embedding((2 * ws - 1) ** 2, heads)
        self.register_buffer("rel_pos_index", relative_position_index(ws), persistent=False)

    def forward(self, t):
        b, gy, gx, w1, w2, d = t.shape
        n = w1 * w2
        h, dh = self.heads, self.dim_head
        x = t.reshape(b * gy * gx, n, d)
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (z.reshape(-1, n, h, dh).transpose(1, 2) for z in (q, k, v))  # [B, h, n, dh]
        q = q * self.scale
        sim = q @ k.transpose(-1, -2)
        bias = self.rel_pos_bias(self.rel_pos_index)  # [n, n, h]
        sim = sim + bias.permute(2, 0, 1)
        attn = sim.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(-1, n, h * dh)  # heads merged, head-major
        out = self.to_out(out)
        return out.reshape(b, gy, gx, w1, w2, d)


class ChannelAttention(nn.Module):
    """Per group of pixels and per head, attention among the head's channels, each an
    L2-normalised vector over the group's pixels. grid=False: the groups are the ws x ws
    blocks; grid=True: the pixels sharing (y % ws, x % ws)."""

    def __init__(self, dim, heads, ws, grid):
        super().__init__()
        self.heads = heads
        self.ws = ws
        self.grid = grid
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, 1, 0, bias=False)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, 1, 1, groups=3 * dim, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, 1, 0, bias=False)

    def _split(self, z):
        """[b, c, H, W] -> [b, groups, heads, dh, pixels of a group]."""
        b, c, hh, ww = z.shape
        ws, h = self.ws, self.heads
        gh, gw = hh // ws, ww // ws
        z = z.reshape(b, h, c // h, gh, ws, gw, ws)  # y = gy*ws + py, x = gx*ws + px
        if self.grid:  # group (py, px), pixels (gy, gx)
            z = z.permute(0, 4, 6, 1, 2, 3, 5)
            return z.reshape(b, ws * ws, h, c // h, gh * gw)
        z = z.permute(0, 3, 5, 1, 2, 4, 6)  # group (gy, gx), pixels (py, px)
        return z.reshape(b, gh * gw, h, c // h, ws * ws)

    def _merge(self, z, hh, ww):
        b, _, h, dh, _ = z.shape
        ws = self.ws
        gh, gw = hh // ws, ww // ws
        if self.grid:
            z = z.reshape(b, ws, ws, h, dh, gh, gw).permute(0, 3, 4, 5, 1, 6, 2)
        else:
            z = z.reshape(b, gh, gw, h, dh, ws, ws).permute(0, 3, 4, 1, 5, 2, 6)
        return z.reshape(b, h * dh, hh, ww)

    def forward(self, x):
        _, _, hh, ww = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = self._split(q), self._split(k), self._split(v)
        q = F.normalize(q, dim=-1, eps=1e-12)
        k = F.normalize(k, dim=-1, eps=1e-12)
        attn = (q @ k.transpose(-1, -2)) * self.temperature  # [b, g, heads, dh, dh]
        attn = attn.softmax(dim=-1)
        out = self._merge(attn @ v, hh, ww)
        return self.project_out(out)


class GatedConvFeedForward(nn.Module):
    """1x1 conv to 2c, depthwise 3x3, gelu(first half) * second half, 1x1 conv to c."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, 1, 0, bias=False)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, 1, 1, groups=2 * hidden, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, 1, 0, bias=False)

    def forward(self, x):
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


# --- blocks and groups -------------------------------------------------------------------

class OSABlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        ws, dim = c["window_size"], c["num_feat"]

        def ffn():
            return ConvPreNormResidual(dim, GatedConvFeedForward(dim, c["ffn_hidden"]))

        def ca(grid):
            return ConvPreNormResidual(dim, ChannelAttention(dim, c["ca_heads"], ws, grid))

        def wa():
            return PreNormResidual(dim, WindowAttention(dim, c["heads"], ws))

        self.layer = nn.Sequential(
            MBConvResidual(dim, c["se_hidden"]),  # 0
            BlockPartition(ws),                   # 1
            wa(),                                 # 2 block window attention
            BlockMerge(),                         # 3
            ffn(),                                # 4
            ca(grid=False),                       # 5 block channel attention
            ffn(),                                # 6
            GridPartition(ws),                    # 7
            wa(),                                 # 8 grid window attention
            GridMerge(),                          # 9
            ffn(),                                # 10
            ca(grid=True),                        # 11 grid channel attention
            ffn(),                                # 12
        )

    def forward(self, x):
        return self.layer(x)


class ESA(nn.Module):
    """Enhanced spatial attention: x * sigmoid(mask), the mask from a strided, max-pooled,
    bilinearly upsampled branch plus a 1x1 branch."""

    def __init__(self, f, dim):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, f, 1, 1, 0)
        self.conv_f = nn.Conv2d(f, f, 1, 1, 0)
        self.conv2 = nn.Conv2d(f, f, 3, 2, 0)
        self.conv3 = nn.Conv2d(f, f, 3, 1, 1)
        self.conv4 = nn.Conv2d(f, dim, 1, 1, 0)

    def forward(self, x):
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        v = F.max_pool2d(c1, kernel_size=7, stride=3)
        c3 = self.conv3(v)
        c3 = F.interpolate(c3, size=(x.shape[2], x.shape[3]), mode="bilinear",
                           align_corners=False)
        cf = self.conv_f(c1_)
        m = torch.sigmoid(self.conv4(c3 + cf))
        return x * m


class OSAG(nn.Module):
    def __init__(self, c):
        super().__init__()
        dim = c["num_feat"]
        self.residual_layer = nn.Sequential(
            *[OSABlock(c) for _ in range(c["block_num"])], nn.Conv2d(dim, dim, 1, 1, 0))
        self.esa = ESA(c["esa_channels"], dim)

    def forward(self, x):
        return self.esa(self.residual_layer(x) + x)


class OmniSR(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = dict(config)
        self.config = c
        self.window_size = c["window_size"]
        self.scale = c["scale"]
        dim, cin, cout = c["num_feat"], c["in_ch"], c["out_ch"]
        self.input = nn.Conv2d(cin, dim, 3, 1, 1)
        self.residual_layer = nn.Sequential(*[OSAG(c) for _ in range(c["res_num"])])
        self.output = nn.Conv2d(dim, dim, 3, 1, 1)
        self.up = nn.Sequential(nn.Conv2d(dim, cout * self.scale ** 2, 3, 1, 1),
                                nn.PixelShuffle(self.scale))

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        ws = self.window_size
        x = F.pad(x, (0, (-w) % ws, 0, (-h) % ws), mode="constant", value=0.0)
        if min(x.shape[2], x.shape[3]) < 15:
            raise ValueError(f"OmniSR's ESA needs >= 15 pixels a side after padding, "
                             f"got {list(x.shape[2:])}")
        residual = self.input(x)
        out = self.residual_layer(residual)
        out = self.output(out) + residual
        out = self.up(out)
        return out[:, :, :h * self.scale, :w * self.scale]


# --- loading -----------------------------------------------------------------------------

def config_from_state(sd):
    """The hyper-parameters an OmniSR state dict implies, from its tensor shapes."""
    import math
    import re

    num_feat, in_ch = sd["input.weight"].shape[:2]
    groups = {int(m.group(1)) for k in sd if (m := re.match(r"residual_layer\.(\d+)\.", k))}
    res_num = len(groups)
    entries = {int(m.group(1)) for k in sd
               if (m := re.match(r"residual_layer\.0\.residual_layer\.(\d+)\.", k))}
    block_num = len(entries) - 1
    if res_num == 0 or block_num < 1 or groups != set(range(res_num)) \
            or entries != set(range(block_num + 1)):
        raise ValueError("not an OmniSR state dict (residual_layer groups / blocks)")
    pre = "residual_layer.0.residual_layer.0.layer."
    rows, heads = sd[pre + "2.fn.rel_pos_bias.weight"].shape
    ws = (math.isqrt(rows) + 1) // 2
    if (2 * ws - 1) ** 2 != rows:
        raise ValueError(f"rel_pos_bias has {rows} rows, not (2 ws - 1)^2")
    up = sd["up.0.weight"].shape[0]
    out_ch = in_ch
    scale = math.isqrt(up // out_ch)
    if out_ch * scale * scale != up:
        raise ValueError(f"up.0 has {up} output channels, not {out_ch} scale^2")
    return {
        "in_ch": int(in_ch), "out_ch": int(out_ch), "num_feat": int(num_feat),
        "res_num": res_num, "block_num": block_num, "window_size": ws, "scale": scale,
        "heads": int(heads), "ca_heads": int(sd[pre + "5.fn.temperature"].shape[0]),
        "se_hidden": int(sd[pre + "0.fn.4.gate.1.weight"].shape[0]),
        "ffn_hidden": int(sd[pre + "4.fn.project_out.weight"].shape[1]),
        "esa_channels": int(sd["residual_layer.0.esa.conv1.weight"].shape[0]),
    }


def load_state(path, key="auto"):
    """{name: tensor} of a .pth (BasicSR's {"params_ema" / "params": ...} unwrapped, the EMA
    weights preferred as kiln does) or of a .safetensors with the same names."""
    if path.endswith(".safetensors"):
        sys.path.insert(0, HERE)
        from unet_gan_torch import load_safetensors

        tensors, _ = load_safetensors(path)
        return {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, "-"
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if "params" in sd or "params_ema" in sd:
        if key == "auto":
            key = "params_ema" if "params_ema" in sd else "params"
        return sd[key], key
    return sd, "-"


def load_model(path, key="auto"):
    """(OmniSR with the file's weights, strictly loaded, in eval mode; the dict key used)."""
    sd, key = load_state(path, key)
    model = OmniSR(config_from_state(sd))
    model.load_state_dict(sd, strict=True)
    return model.eval(), key


def forward_nhwc(model, x_nhwc, dtype=torch.float64):
    """Run on an NHWC numpy array in [0, 1]; NHWC float64 numpy out."""
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(x_nhwc)).permute(0, 3, 1, 2).to(dtype)
        y = model.to(dtype)(x)
        return y.permute(0, 2, 3, 1).contiguous().to(torch.float64).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help=".pth (or .safetensors with its names)")
    ap.add_argument("--input", required=True,
                    help="image (divided by 255) or .npy float NHWC [1,H,W,3] / [H,W,3]")
    ap.add_argument("--output", help=".npy, NHWC [1,sH,sW,3], in the computation's dtype")
    ap.add_argument("--png", help="also write the output as an 8-bit PNG")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    sys.path.insert(0, HERE)
    from psnr import quantise, read_png, write_png

    torch.set_num_threads(max(1, args.threads))
    model, key = load_model(args.weights)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.weights} ({key}): {len(model.state_dict())} tensors, {n} parameters, "
          f"{model.config}")
    if args.input.endswith(".npy"):
        x = np.load(args.input, allow_pickle=False).astype(np.float64)
        if x.ndim == 3:
            x = x[None]
    else:
        x = (read_png(args.input).astype(np.float64) / 255.0)[None]
    y = forward_nhwc(model, x, getattr(torch, args.dtype))
    print(f"in {list(x.shape)} -> out {list(y.shape)}, range [{y.min():.4f}, {y.max():.4f}]")
    if args.output:
        np.save(args.output, y.astype(args.dtype), allow_pickle=False)
    if args.png:
        write_png(args.png, quantise(y[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
