#!/usr/bin/python3
"""Float64 emulation of waifu2x-ncnn-vulkan and realcugan-ncnn-vulkan, for checking kiln.

    /usr/bin/python3 tools/reference/ncnn_emulate.py -m waifu2x-cunet-noise1 IN.png OUT.png
    /usr/bin/python3 tools/reference/ncnn_emulate.py -m realcugan-up2x-no-denoise IN.png OUT.png \
        --tile 32 --syncgap 1 --compare REFERENCE.png

Interprets the model's ncnn .param/.bin (kiln's models folder; the layer types these
families use: Convolution, Deconvolution, Pooling, InnerProduct, Scale, BinaryOp, Eltwise,
Crop, PixelShuffle, Split) in float64 with Debian's PyTorch, and applies each program's
processing rules as read in its source (nihui/waifu2x-ncnn-vulkan 20220728,
nihui/realcugan-ncnn-vulkan 20220728):
  - tiles of --tile px, each read with a pre-pad of P px and its bottom/right extended to a
    multiple of M; the output is the top-left (tile x scale) of the tile's result;
  - waifu2x: P = 28 (CUNet 1x, M 4), 18 (CUNet 2x, M 2), 7 (UpConv7, M 2), pixels outside
    the image clamp to the edge;
  - realcugan: P = 18 (2x, M 2), 14 (3x, M 4), 19 (4x, M 2), pixels outside the image
    reflect (x -> -x, w-1+k -> w-1-k); 4x adds the input, nearest-upsampled, to the output;
    --syncgap 1/2/3 shares the squeeze-excitation means (blobs gap0..gap3) across tiles as
    the program does when the tile is smaller than the image;
  - in: RGB / 255; out: floor(v * 255 + 0.5) clamped to 0..255.
Measured against the binaries on lavapipe (after psnr.repair_lavapipe): 53-61 dB, max
difference 1-3 levels, on tests/data/reference/ (fp16 storage in the binaries).
Needs Debian's numpy, PIL and torch: run with /usr/bin/python3.
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from psnr import format_db, psnr, read_png, repair_lavapipe, write_png  # noqa: E402

NCNN_MAGIC = "7767517"
FLAG_FP16 = 0x01306B47
GAPS = ("gap0", "gap1", "gap2", "gap3")
Layer = Tuple[str, str, List[str], List[str], Dict[int, object]]


def parse_param(path: str) -> List[Layer]:
    """ncnn .param -> [(type, name, inputs, outputs, {key: value})]; array keys (-233xx)
    are stored under -key - 23300 as lists."""
    lines = open(path).read().split("\n")
    if lines[0].strip() != NCNN_MAGIC:
        raise ValueError(f"{path}: not an ncnn .param")
    layers = []
    for ln in lines[2:]:
        t = ln.split()
        if not t:
            continue
        nin, nout = int(t[2]), int(t[3])
        params: Dict[int, object] = {}
        for kv in t[4 + nin + nout:]:
            k, v = kv.split("=")
            key = int(k)
            if key <= -23300:
                params[-key - 23300] = [float(x) for x in v.split(",")[1:]]
            else:
                params[key] = float(v) if any(c in v for c in ".e") else int(v)
        layers.append((t[0], t[1], t[4:4 + nin], t[4 + nin:4 + nin + nout], params))
    return layers


class _Bin:
    def __init__(self, path: str):
        with open(path, "rb") as f:
            self.data = f.read()
        self.pos = 0

    def weight(self, n: int) -> torch.Tensor:  # tagged (fp16 or fp32)
        flag = struct.unpack_from("<I", self.data, self.pos)[0]
        self.pos += 4
        if flag == FLAG_FP16:
            a = np.frombuffer(self.data, "<f2", n, self.pos)
            self.pos += (2 * n + 3) // 4 * 4
        elif flag == 0:
            a = np.frombuffer(self.data, "<f4", n, self.pos)
            self.pos += 4 * n
        else:
            raise ValueError(f"unsupported weight storage flag {flag:#x}")
        return torch.from_numpy(a.astype(np.float64))

    def raw(self, n: int) -> torch.Tensor:  # untagged fp32 (biases)
        a = np.frombuffer(self.data, "<f4", n, self.pos)
        self.pos += 4 * n
        return torch.from_numpy(a.astype(np.float64))


def _activation(x: torch.Tensor, p: Dict[int, object]) -> torch.Tensor:
    kind = p.get(9, 0)
    if kind == 0:
        return x
    if kind == 1:
        return F.relu(x)
    if kind == 2:
        return F.leaky_relu(x, p[10][0])
    if kind == 4:
        return torch.sigmoid(x)
    raise ValueError(f"activation type {kind}")


class NcnnNet:
    """An ncnn graph run in float64 on [1, c, h, w] tensors."""

    def __init__(self, param: str, weights: str):
        self.layers = parse_param(param)
        b = _Bin(weights)
        self.weights: Dict[str, Tuple[torch.Tensor, Optional[torch.Tensor]]] = {}
        for typ, name, _, _, p in self.layers:
            if typ in ("Convolution", "Deconvolution"):
                self.weights[name] = (b.weight(p[6]), b.raw(p[0]) if p.get(5, 0) else None)
            elif typ == "InnerProduct":
                self.weights[name] = (b.weight(p[2]), b.raw(p[0]) if p.get(1, 0) else None)
        if b.pos != len(b.data):
            raise ValueError(f"{weights}: {len(b.data) - b.pos} bytes left after the weights")

    def forward(self, x: torch.Tensor, feeds: Optional[Dict[str, torch.Tensor]] = None,
                want: Optional[Tuple[str, ...]] = None):
        """Runs the graph; blobs named in feeds replace the computed ones (as ncnn's
        Extractor::input does). Returns the last blob, or {name: blob} for want."""
        feeds = feeds or {}
        blobs: Dict[str, torch.Tensor] = {}
        for typ, name, ins, outs, p in self.layers:
            xs = [blobs[i] for i in ins]
            if typ == "Input":
                y = x
            elif typ == "Split":
                for o in outs:
                    blobs[o] = xs[0]
                continue
            elif typ in ("Convolution", "Deconvolution"):
                w, bias = self.weights[name]
                k = p[1]
                cin = w.numel() // (p[0] * k * k)
                w = w.view(p[0], cin, k, k)
                if typ == "Convolution":
                    y = F.conv2d(xs[0], w, bias, stride=p.get(3, 1), padding=p.get(4, 0),
                                 dilation=p.get(2, 1))
                else:  # ncnn keeps [out][in][kh][kw]; pad crops the full output
                    y = F.conv_transpose2d(xs[0], w.transpose(0, 1), bias, stride=p.get(3, 1))
                    pad = p.get(4, 0)
                    if pad:
                        y = y[:, :, pad:y.shape[2] - pad, pad:y.shape[3] - pad]
                y = _activation(y, p)
            elif typ == "Pooling":
                if p.get(0) != 1 or p.get(4) != 1:
                    raise ValueError(f"{name}: only global average pooling")
                y = xs[0].mean(dim=(2, 3))
            elif typ == "InnerProduct":
                w, bias = self.weights[name]
                y = _activation(F.linear(xs[0], w.view(p[0], -1), bias), p)
            elif typ == "Scale":
                y = xs[0] * xs[1].view(1, -1, 1, 1)
            elif typ in ("BinaryOp", "Eltwise"):
                a, c = (t.view(1, -1, 1, 1) if t.dim() == 2 else t for t in xs)
                # BinaryOp 0=op: 0 add, 1 sub, 2 mul; Eltwise 0=op: 1 sum
                op = p.get(0, 0) if typ == "BinaryOp" else {1: 0}.get(p.get(0, 1), -1)
                if op == 0:
                    y = a + c
                elif op == 1:
                    y = a - c
                elif op == 2:
                    y = a * c
                else:
                    raise ValueError(f"{name}: unsupported {typ} {p}")
            elif typ == "Crop":
                if len(xs) == 2:  # crop to the second blob's size at (0=x, 1=y)
                    ox, oy = p.get(0, 0), p.get(1, 0)
                    y = xs[0][:, :, oy:oy + xs[1].shape[2], ox:ox + xs[1].shape[3]]
                else:  # starts 9, ends 10 (negative: from the end), axes 11 = (h, w)
                    (h0, w0), (h1, w1) = (int(v) for v in p[9]), (int(v) for v in p[10])
                    h, w = xs[0].shape[2], xs[0].shape[3]
                    y = xs[0][:, :, h0:h + h1 if h1 < 0 else h1, w0:w + w1 if w1 < 0 else w1]
            elif typ == "PixelShuffle":
                y = F.pixel_shuffle(xs[0], p[0])
            else:
                raise ValueError(f"{name}: layer type {typ} not emulated")
            blobs[outs[0]] = feeds.get(outs[0], y)
        if want:
            return {k: blobs[k] for k in want}
        return blobs[self.layers[-1][3][0]]


def program_rules(model: str) -> Tuple[int, int, int, str]:
    """kiln model name -> (scale, pre-pad, size multiple, edge rule: 'clamp' / 'reflect')."""
    m = re.fullmatch(r"waifu2x-(cunet|upconv7-anime)(?:-noise[0-3])?(-scale2x)?", model)
    if m:
        if m.group(1) == "upconv7-anime":
            return 2, 7, 2, "clamp"
        return (2, 18, 2, "clamp") if m.group(2) else (1, 28, 4, "clamp")
    m = re.fullmatch(r"realcugan-up([234])x-(?:conservative|no-denoise|denoise[123]x)", model)
    if m:
        scale = int(m.group(1))
        return scale, {2: 18, 3: 14, 4: 19}[scale], 4 if scale == 3 else 2, "reflect"
    raise ValueError(f"{model!r}: not a waifu2x-* or realcugan-* model")


def _edge_index(i: int, n: int, rule: str) -> int:
    if rule == "clamp":
        return min(max(i, 0), n - 1)
    return (n - 1) - abs(abs(i) - (n - 1))


def _tiles(h: int, w: int, tile: int, pad: int, mult: int, rule: str):
    """(yi, xi, y0, x0, th, tw, rows, cols): the window each tile reads, as image indices."""
    out = []
    for yi in range((h + tile - 1) // tile):
        th = min((yi + 1) * tile, h) - yi * tile
        extra_h = (th + mult - 1) // mult * mult - th
        rows = [_edge_index(r, h, rule)
                for r in range(yi * tile - pad, yi * tile + th + pad + extra_h)]
        for xi in range((w + tile - 1) // tile):
            tw = min((xi + 1) * tile, w) - xi * tile
            extra_w = (tw + mult - 1) // mult * mult - tw
            cols = [_edge_index(c, w, rule)
                    for c in range(xi * tile - pad, xi * tile + tw + pad + extra_w)]
            out.append((yi, xi, yi * tile, xi * tile, th, tw, rows, cols))
    return out


def emulate(model: str, net: NcnnNet, img: np.ndarray, tile: int = 512,
            syncgap: int = 0) -> np.ndarray:
    """uint8 HxWx3 RGB -> float64 HxWx3 (0..1 scale, before quantisation)."""
    scale, pad, mult, rule = program_rules(model)
    h, w = img.shape[:2]
    x = torch.from_numpy(img.astype(np.float64).transpose(2, 0, 1)[None] / 255.0)
    tiles = _tiles(h, w, tile, pad, mult, rule)

    def window(t):
        return x[:, :, t[6]][:, :, :, t[7]]

    feeds: Dict[str, torch.Tensor] = {}
    if model.startswith("realcugan-") and syncgap and tile < max(h, w):
        if syncgap == 1:  # one gap at a time, each pass fed the synced earlier ones
            for g in GAPS:
                got = [net.forward(window(t), dict(feeds), (g,))[g] for t in tiles]
                feeds[g] = sum(got) / len(got)
        else:  # 2: every tile's own gaps, averaged; 3: the same on every third 32-px tile
            src = tiles
            if syncgap == 3:
                n_y, n_x = (h + 31) // 32, (w + 31) // 32
                src = [t for t in _tiles(h, w, 32, pad, mult, rule)
                       if t[0] % 3 == 0 and t[1] % 3 == 0 and t[0] + 2 < n_y and t[1] + 2 < n_x]
                if not src:
                    raise ValueError("syncgap 3 needs at least 96 px each way "
                                     "(realcugan-ncnn-vulkan crashes there)")
            outs = [net.forward(window(t), want=GAPS) for t in src]
            for g in GAPS:
                feeds[g] = sum(o[g] for o in outs) / len(outs)
    y = torch.zeros(1, 3, h * scale, w * scale, dtype=torch.float64)
    for t in tiles:
        _, _, y0, x0, th, tw, _, _ = t
        o = net.forward(window(t), dict(feeds))
        y[:, :, y0 * scale:(y0 + th) * scale, x0 * scale:(x0 + tw) * scale] = \
            o[:, :, :th * scale, :tw * scale]
    if model.startswith("realcugan-") and scale == 4:
        y = y + x.repeat_interleave(4, 2).repeat_interleave(4, 3)
    return y[0].numpy().transpose(1, 2, 0)


def quantise(v: np.ndarray) -> np.ndarray:
    """The programs' output rule: floor(v * 255 + 0.5), clamped to 0..255."""
    return np.clip(np.floor(v * 255.0 + 0.5), 0, 255).astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True, help="kiln model name (file stem)")
    ap.add_argument("input")
    ap.add_argument("output", help="output PNG")
    ap.add_argument("--models-dir", default=os.path.join(REPO, "models"))
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--syncgap", type=int, default=0, choices=(0, 1, 2, 3),
                    help="realcugan -c; the program's default is 3")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compare", default=None,
                    help="a program output to compare with (PSNR after repair_lavapipe)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        stem = os.path.join(args.models_dir, args.model)
        net = NcnnNet(stem + ".param", stem + ".bin")
        out = quantise(emulate(args.model, net, read_png(args.input), args.tile, args.syncgap))
    except (OSError, ValueError) as e:
        print(f"ncnn_emulate: error: {e}", file=sys.stderr)
        return 1
    write_png(args.output, out)
    if args.compare:
        ref = read_png(args.compare)
        fixed, n = repair_lavapipe(ref, out)
        d = np.abs(fixed.astype(np.int16) - out.astype(np.int16))
        print(f"{args.model}: PSNR {format_db(psnr(fixed, out))} dB "
              f"(raw {format_db(psnr(ref, out))}, repaired {n}) max|d| {int(d.max())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
