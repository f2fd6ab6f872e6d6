#!/usr/bin/python3
"""Writes the small weight fixtures for kiln's weights/ tests (run with /usr/bin/python3).

Deterministic (fixed seeds). Output:
  tests/data/weights/   tiny RRDBNet / SRVGGNetCompact files (.pth zip + legacy, .safetensors
                        F32/F16/BF16, ncnn .param/.bin), hostile and truncated files, and
                        expected.json with shapes and sample values the tests compare.
  tests/data/models/    input.npy and each tiny model's PyTorch output (.npy, float32, NHWC),
                        manifest.json naming output -> (model file, scale).
"""
import io
import json
import os
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(ROOT, "tests", "data", "weights")
MODELS = os.path.join(ROOT, "tests", "data", "models")

# Tiny but distinct sizes, so a swapped dimension shows up in the tests.
NF, GC, NB = 4, 2, 1
SRVGG_NF, SRVGG_CONV = 4, 2


class RDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        for j in range(1, 6):
            setattr(self, f"conv{j}", nn.Conv2d(nf + (j - 1) * gc, gc if j < 5 else nf, 3, 1, 1))

    def forward(self, x):
        feats = [x]
        for j in range(1, 5):
            feats.append(F.leaky_relu(getattr(self, f"conv{j}")(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = RDB(nf, gc), RDB(nf, gc), RDB(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """BasicSR's RRDBNet: pixel-unshuffle for scale 2/1, two nearest x2 + conv stages."""

    def __init__(self, scale, nf=NF, gc=GC, nb=NB):
        super().__init__()
        self.scale = scale
        in_ch = 3 * {4: 1, 2: 4, 1: 16}[scale]
        self.conv_first = nn.Conv2d(in_ch, nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)

    def forward(self, x):
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = F.pixel_unshuffle(x, 4)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        lrelu = lambda t: F.leaky_relu(t, 0.2)
        feat = lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(lrelu(self.conv_hr(feat)))


class SRVGGNetCompact(nn.Module):
    def __init__(self, upscale, nf=SRVGG_NF, num_conv=SRVGG_CONV):
        super().__init__()
        self.upscale = upscale
        layers = [nn.Conv2d(3, nf, 3, 1, 1), nn.PReLU(nf)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf)]
        layers.append(nn.Conv2d(nf, 3 * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        out = F.pixel_shuffle(out, self.upscale)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def make_rrdb(scale, seed):
    torch.manual_seed(seed)
    return RRDBNet(scale).eval()


def make_srvgg(upscale, seed):
    torch.manual_seed(seed)
    m = SRVGGNetCompact(upscale).eval()
    with torch.no_grad():
        for layer in m.body:
            if isinstance(layer, nn.PReLU):
                layer.weight.uniform_(0.05, 0.4)  # not the constant 0.25 default
    return m


def to_esrgan_naming(sd, nb=NB):
    """BasicSR keys -> original ESRGAN sequential keys (model.N...) for a 4x model."""
    out = OrderedDict()
    fixed = {"conv_first": "model.0", "conv_body": f"model.1.sub.{nb}", "conv_up1": "model.3",
             "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "body":
            out[f"model.1.sub.{parts[1]}.{parts[2].upper()}.{parts[3]}.0.{parts[4]}"] = v
        else:
            out[f"{fixed[parts[0]]}.{parts[1]}"] = v
    return out


# ---------------------------------------------------------------- writers

def path(name):
    return os.path.join(WEIGHTS, name)


def save_pth(obj, name, legacy=False):
    torch.save(obj, path(name), _use_new_zipfile_serialization=not legacy)


def write_safetensors(sd, name, dtype="F32"):
    torch_dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype]
    header, blobs, offset = {}, [], 0
    for k, v in sd.items():
        raw = v.detach().to(torch_dtype).contiguous().view(torch.uint8).numpy().tobytes() \
            if dtype == "BF16" else v.detach().to(torch_dtype).numpy().tobytes()
        header[k] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    write_raw_safetensors(header, b"".join(blobs), name)


def write_raw_safetensors(header, data, name, header_len=None):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    n = len(text) if header_len is None else header_len
    with open(path(name), "wb") as f:
        f.write(struct.pack("<Q", n) + text + data)


def zip_info(name, compression=zipfile.ZIP_STORED):
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed: reproducible bytes
    info.compress_type = compression
    return info


def write_torch_zip(name, pickle_bytes, extra=None):
    """A torch.save-shaped zip (archive/data.pkl, archive/version) around hand-made pickle bytes."""
    with zipfile.ZipFile(path(name), "w", zipfile.ZIP_STORED) as z:
        z.writestr(zip_info("archive/data.pkl"), pickle_bytes)
        for k, v in (extra or {}).items():
            z.writestr(zip_info(f"archive/{k}"), v)
        z.writestr(zip_info("archive/version"), b"3\n")


def rezip(src, dst, compression=zipfile.ZIP_DEFLATED, patch=None):
    with zipfile.ZipFile(path(src)) as zin, zipfile.ZipFile(path(dst), "w", compression) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if patch:
                data = patch(info.filename, data)
            zout.writestr(zip_info(info.filename, compression), data)


def truncate(src, dst, keep):
    with open(path(src), "rb") as f:
        data = f.read()
    with open(path(dst), "wb") as f:
        f.write(data[: int(len(data) * keep)])


def sample(t):
    """Shape, first values and sum of a tensor as the reader must see it (fp32)."""
    flat = t.detach().float().reshape(-1)
    return {"shape": list(t.shape), "first": [float(x) for x in flat[:4]], "sum": float(flat.double().sum())}


def expectations(sd, keys, dtype=torch.float32):
    return {"count": len(sd), "tensors": {k: sample(sd[k].to(dtype)) for k in keys}}


def ncnn_expectations(sd, keys):
    """ncnn stores conv weights in fp16 here; biases and PReLU slopes are always fp32."""
    def stored(k):
        t = sd[k]
        return t.half() if k.endswith(".weight") and t.dim() == 4 else t
    return {"count": len(sd), "tensors": {k: sample(stored(k)) for k in keys}}


# ---------------------------------------------------------------- ncnn

NCNN_F16_TAG = 0x01306B47


def ncnn_weight(t, fp16):
    flat = t.detach().float().reshape(-1).numpy()
    if fp16:
        raw = flat.astype(np.float16).tobytes()
        raw += b"\0" * (-len(raw) % 4)
        return struct.pack("<I", NCNN_F16_TAG) + raw
    return struct.pack("<I", 0) + flat.astype("<f4").tobytes()


def ncnn_raw(t):
    return t.detach().float().reshape(-1).numpy().astype("<f4").tobytes()


class NcnnWriter:
    """Collects layers, then inserts Split layers for blobs read more than once (as ncnn does)."""

    def __init__(self):
        self.layers, self.bin = [], []

    def add(self, type_, name, inputs, outputs, params="", data=b""):
        self.layers.append([type_, name, list(inputs), list(outputs), params])
        self.bin.append(data)

    def conv(self, name, src, dst, w, b, fp16, act=""):
        params = f"0={w.shape[0]} 1=3 4=1 5=1 6={w.numel()}" + (f" {act}" if act else "")
        self.add("Convolution", name, [src], [dst], params, ncnn_weight(w, fp16) + ncnn_raw(b))

    def write(self, stem, bin_data=None):
        uses = {}
        for layer in self.layers:
            for b in layer[2]:
                uses[b] = uses.get(b, 0) + 1
        out, seen = [], {}
        for layer in self.layers:
            for i, b in enumerate(layer[2]):
                if uses[b] > 1:
                    layer[2][i] = f"{b}_splitncnn_{seen.get(b, 0)}"
                    seen[b] = seen.get(b, 0) + 1
            out.append(layer)
            for b in layer[3]:
                if uses.get(b, 0) > 1:
                    outs = " ".join(f"{b}_splitncnn_{k}" for k in range(uses[b]))
                    out.append(["Split", f"split_{b}", [b], outs.split(), ""])
        blobs = sum(len(l[3]) for l in out)
        lines = ["7767517", f"{len(out)} {blobs}"]
        for t, n, i, o, p in out:
            lines.append(f"{t:<16} {n:<16} {len(i)} {len(o)} {' '.join(i + o)} {p}".rstrip())
        with open(path(stem + ".param"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(path(stem + ".bin"), "wb") as f:
            f.write(b"".join(self.bin) if bin_data is None else bin_data)


def ncnn_srvgg(sd, upscale, fp16=True, resize=None):
    w = NcnnWriter()
    w.add("Input", "input", [], ["data"], "")
    src, n_conv = "data", SRVGG_CONV + 2
    for k in range(n_conv):
        dst = f"c{k}"
        w.conv(f"conv_{k}", src, dst, sd[f"body.{2 * k}.weight"], sd[f"body.{2 * k}.bias"], fp16)
        src = dst
        if k + 1 < n_conv:
            slope = sd[f"body.{2 * k + 1}.weight"]
            w.add("PReLU", f"prelu_{k}", [src], [f"p{k}"], f"0={slope.numel()}", ncnn_raw(slope))
            src = f"p{k}"
    w.add("PixelShuffle", "shuffle", [src], ["shuffled"], f"0={upscale}")
    w.add("Interp", "base", ["data"], ["base"], f"0=1 1={upscale:.6e} 2={upscale:.6e}")
    out = "output" if resize is None else "sum"
    w.add("BinaryOp", "add", ["shuffled", "base"], [out], "0=0")
    if resize is not None:
        w.add("Interp", "resize", ["sum"], ["output"], f"0=3 1={resize:.6e} 2={resize:.6e}")
    return w


def ncnn_rrdb(sd, fp16=False):
    w = NcnnWriter()
    leaky = "9=2 -23310=1,2.000000e-01"
    w.add("Input", "input", [], ["data"], "")
    w.conv("conv_first", "data", "feat", sd["conv_first.weight"], sd["conv_first.bias"], fp16)
    x = "feat"
    for b in range(NB):
        block_in = x
        for r in range(1, 4):
            feats = [x]
            for j in range(1, 6):
                cat = feats[0]
                if len(feats) > 1:
                    cat = f"b{b}r{r}cat{j}"
                    w.add("Concat", cat, feats, [cat], "")
                dst = f"b{b}r{r}c{j}"
                key = f"body.{b}.rdb{r}.conv{j}"
                w.conv(key, cat, dst, sd[key + ".weight"], sd[key + ".bias"], fp16, leaky if j < 5 else "")
                feats.append(dst)
            w.add("Eltwise", f"b{b}r{r}add", [feats[-1], x], [f"b{b}r{r}out"], "0=1 -23301=2,2.000000e-01,1.000000e+00")
            x = f"b{b}r{r}out"
        w.add("Eltwise", f"b{b}add", [x, block_in], [f"b{b}out"], "0=1 -23301=2,2.000000e-01,1.000000e+00")
        x = f"b{b}out"
    w.conv("conv_body", x, "body", sd["conv_body.weight"], sd["conv_body.bias"], fp16)
    w.add("BinaryOp", "residual", ["feat", "body"], ["res"], "0=0")
    x = "res"
    for u in (1, 2):
        w.add("Interp", f"up{u}", [x], [f"up{u}"], "0=1 1=2.000000e+00 2=2.000000e+00")
        w.conv(f"conv_up{u}", f"up{u}", f"cu{u}", sd[f"conv_up{u}.weight"], sd[f"conv_up{u}.bias"], fp16, leaky)
        x = f"cu{u}"
    w.conv("conv_hr", x, "hr", sd["conv_hr.weight"], sd["conv_hr.bias"], fp16, leaky)
    w.conv("conv_last", "hr", "output", sd["conv_last.weight"], sd["conv_last.bias"], fp16)
    return w


# ---------------------------------------------------------------- hostile pickles

def pickle_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


HOSTILE_PICKLES = {
    # GLOBAL posix.system called with "echo pwned": what a malicious .pth does.
    "evil_system.pth": b"\x80\x02cposix\nsystem\n" + pickle_str("echo pwned") + b"\x85R.",
    # Protocol 4 STACK_GLOBAL builtins.eval.
    "evil_eval.pth": b"\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04eval\x93"
                     + b"\x8c\x031+1\x85R.",
    # Python 2 spelling inside an otherwise normal state dict.
    "evil_builtin.pth": b"\x80\x02}q\x00(" + pickle_str("w") + b"c__builtin__\ngetattr\nq\x01u.",
    # INST (protocol 0 opcode 'i') is not implemented on purpose.
    "evil_opcode.pth": b"\x80\x02(i__builtin__\nlist\n.",
    # BINGET of a memo slot never written.
    "evil_memo.pth": b"\x80\x02h\x07.",
}


def write_hostile():
    for name, data in HOSTILE_PICKLES.items():
        write_torch_zip(name, data)
    # safetensors: header length 2^60; a tensor claiming 2^60 bytes; an overflowing shape;
    # offsets that disagree with the shape; a dtype kiln refuses; not JSON.
    with open(path("evil_header_len.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", 1 << 60) + b"{}      ")
    write_raw_safetensors({"w": {"dtype": "F32", "shape": [1 << 29, 1 << 29],
                                 "data_offsets": [0, 1 << 60]}}, b"\0" * 16, "evil_huge_tensor.safetensors")
    write_raw_safetensors({"w": {"dtype": "F32", "shape": [1 << 62, 1 << 62], "data_offsets": [0, 16]}},
                          b"\0" * 16, "evil_overflow.safetensors")
    write_raw_safetensors({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}},
                          b"\0" * 16, "evil_size_mismatch.safetensors")
    write_raw_safetensors({"w": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}},
                          b"\0" * 16, "unsupported_dtype.safetensors")
    with open(path("evil_json.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", 8) + b"{not jso")


def main():
    os.makedirs(WEIGHTS, exist_ok=True)
    os.makedirs(MODELS, exist_ok=True)
    for d in (WEIGHTS, MODELS):
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
    torch.set_num_threads(1)
    expected = {}

    rrdb4 = make_rrdb(4, seed=1)
    rrdb2 = make_rrdb(2, seed=2)
    srvgg4 = make_srvgg(4, seed=3)
    srvgg2 = make_srvgg(2, seed=4)
    sd_r4, sd_r2 = rrdb4.state_dict(), rrdb2.state_dict()
    sd_s4, sd_s2 = srvgg4.state_dict(), srvgg2.state_dict()
    r_keys = ["conv_first.weight", "body.0.rdb3.conv5.bias", "conv_up2.weight", "conv_last.bias"]
    s_keys = ["body.0.weight", "body.1.weight", "body.6.weight", "body.6.bias"]

    save_pth(sd_r4, "rrdb_x4_basicsr.pth")
    expected["rrdb_x4_basicsr.pth"] = expectations(sd_r4, r_keys)
    # params_ema is preferred over params: a wrong pick loads one stray tensor.
    stray = OrderedDict([("conv_first.weight", torch.zeros(1))])
    save_pth({"params": stray, "params_ema": sd_r2, "iter": 5}, "rrdb_x2_basicsr_ema.pth")
    expected["rrdb_x2_basicsr_ema.pth"] = expectations(sd_r2, r_keys)
    esr = to_esrgan_naming(sd_r4)
    save_pth(esr, "rrdb_x4_esrgan.pth")
    save_pth(esr, "rrdb_x4_esrgan_legacy.pth", legacy=True)
    esr_keys = ["model.0.weight", "model.1.sub.0.RDB3.conv5.0.bias", "model.6.weight", "model.10.bias"]
    for n in ("rrdb_x4_esrgan.pth", "rrdb_x4_esrgan_legacy.pth"):
        expected[n] = expectations(esr, esr_keys)
    write_safetensors(sd_r4, "rrdb_x4.safetensors")
    expected["rrdb_x4.safetensors"] = expectations(sd_r4, r_keys)

    save_pth(sd_s4, "srvgg_x4.pth")
    expected["srvgg_x4.pth"] = expectations(sd_s4, s_keys)
    save_pth({"params": sd_s2}, "srvgg_x2_params.pth")
    s2_keys = ["body.0.weight", "body.1.weight", "body.6.weight"]
    expected["srvgg_x2_params.pth"] = expectations(sd_s2, s2_keys)
    half = OrderedDict((k, v.half()) for k, v in sd_s4.items())
    save_pth(half, "srvgg_x4_f16.pth")
    expected["srvgg_x4_f16.pth"] = expectations(sd_s4, s_keys, torch.float16)
    rezip("srvgg_x4.pth", "srvgg_x4_deflate.pth")
    expected["srvgg_x4_deflate.pth"] = expectations(sd_s4, s_keys)
    for dtype, tdtype in (("F32", torch.float32), ("F16", torch.float16), ("BF16", torch.bfloat16)):
        name = "srvgg_x4.safetensors" if dtype == "F32" else f"srvgg_x4_{dtype.lower()}.safetensors"
        write_safetensors(sd_s4, name, dtype)
        expected[name] = expectations(sd_s4, s_keys, tdtype)

    # Views: tensors sharing one storage at offsets; a transposed (non-contiguous) one.
    torch.manual_seed(5)
    base = torch.randn(40)
    views = OrderedDict([("all", base), ("mid", base[8:20].view(3, 4)), ("tail", base[36:])])
    save_pth(views, "views.pth")
    expected["views.pth"] = expectations(views, ["all", "mid", "tail"])
    save_pth({"t": torch.randn(3, 4).t()}, "noncontiguous.pth")
    save_pth({"n": torch.arange(4)}, "int64_tensor.pth")

    # ncnn: SRVGG x4 in fp16, the same net with a final bicubic 0.5 (like animevideov3-x2),
    # RRDBNet x4 in fp32 (tag 0).
    ncnn_srvgg(sd_s4, 4).write("srvgg_x4_ncnn")
    ncnn_srvgg(sd_s4, 4, resize=0.5).write("srvgg_x4to2_ncnn")
    ncnn_rrdb(sd_r4, fp16=True).write("rrdb_x4_ncnn")
    expected["srvgg_x4_ncnn"] = ncnn_expectations(sd_s4, s_keys)
    expected["srvgg_x4to2_ncnn"] = expected["srvgg_x4_ncnn"]
    expected["rrdb_x4_ncnn"] = ncnn_expectations(sd_r4, r_keys)

    # Malformed copies.
    write_hostile()
    truncate("srvgg_x4.pth", "trunc.pth", 0.6)
    save_pth(sd_s2, "srvgg_x2_legacy.pth", legacy=True)
    expected["srvgg_x2_legacy.pth"] = expectations(sd_s2, s2_keys)
    truncate("srvgg_x2_legacy.pth", "trunc_legacy.pth", 0.7)
    truncate("srvgg_x4.safetensors", "trunc.safetensors", 0.5)
    with open(path("srvgg_x4.pth"), "rb") as f:
        data = bytearray(f.read())
    cd = data.rfind(b"PK\x01\x02")  # last central directory entry: break its signature
    data[cd:cd + 4] = b"PK\x09\x09"
    with open(path("bad_central_dir.pth"), "wb") as f:
        f.write(data)
    rezip("srvgg_x4.pth", "storage_too_short.pth", zipfile.ZIP_STORED,
          patch=lambda n, d: d[:8] if n.endswith("/data/0") else d)
    with open(path("srvgg_x4_ncnn.bin"), "rb") as f:
        srvgg_bin = f.read()
    ncnn_srvgg(sd_s4, 4).write("ncnn_short", srvgg_bin[: len(srvgg_bin) - 100])
    ncnn_srvgg(sd_s4, 4).write("ncnn_trailing", srvgg_bin + b"\0\0\0\0")
    int8 = bytearray(srvgg_bin)
    int8[0:4] = struct.pack("<I", 0x000D4B38)
    ncnn_srvgg(sd_s4, 4).write("ncnn_int8", bytes(int8))
    with open(path("ncnn_garbage.param"), "w") as f:
        f.write("7767517\n3 3\nInput in 0 1 data\nConvolution c 1 1 data out 0=abc 1=3\n")
    with open(path("ncnn_unknown_layer.param"), "w") as f:
        f.write("7767517\n2 2\nInput in 0 1 data\nMysteryOp m 1 1 data out 0=4\n")
    with open(path("ncnn_garbage.bin"), "wb") as f:
        f.write(b"")
    with open(path("ncnn_unknown_layer.bin"), "wb") as f:
        f.write(b"\0" * 16)

    with open(path("expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)

    # Reference outputs for the model engineer: NHWC float32.
    torch.manual_seed(6)
    x = torch.rand(1, 3, 12, 12)
    np.save(os.path.join(MODELS, "input.npy"), x.permute(0, 2, 3, 1).contiguous().numpy())
    manifest = {"layout": "NHWC float32; input is [1, 12, 12, 3] in [0, 1]", "input": "input.npy", "outputs": {}}
    runs = [("rrdb_x4_basicsr", rrdb4, "weights/rrdb_x4_basicsr.pth", 4),
            ("rrdb_x2_basicsr_ema", rrdb2, "weights/rrdb_x2_basicsr_ema.pth", 2),
            ("rrdb_x4_esrgan", rrdb4, "weights/rrdb_x4_esrgan.pth", 4),
            ("srvgg_x4", srvgg4, "weights/srvgg_x4.pth", 4),
            ("srvgg_x2_params", srvgg2, "weights/srvgg_x2_params.pth", 2)]
    with torch.no_grad():
        for name, model, file, scale in runs:
            y = model(x).permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)
            out = f"{name}.npy"
            if name != "rrdb_x4_esrgan":  # same weights and output as rrdb_x4_basicsr
                np.save(os.path.join(MODELS, out), y)
            else:
                out = "rrdb_x4_basicsr.npy"
            manifest["outputs"][file] = {"output": out, "scale": scale}
    with open(os.path.join(MODELS, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
