#!/usr/bin/python3
"""PyTorch CPU peer for kiln's upscale benchmark.

Times one super-resolution network on a random NCHW float32 input and prints
one JSON line:

  {"peer": "pytorch", "arch", "size", "threads", "mode", "median_s", "min_s",
   "runs": [...], "peak_rss_bytes", ...}

Architectures (BasicSR semantics, written out here):
  rrdbnet  RRDBNet x4plus (Real-ESRGAN): 23 RRDB blocks, 64 feat, 32 growth,
           scale 4.  35.85 MFLOP per input pixel.
  srvgg    SRVGGNetCompact x4 (realesr-animevideov3-x4): 16 convs, 64 feat,
           PReLU, upscale 4.  1.24 MFLOP per input pixel.

  upconv7  waifu2x UpConv7 (2x, unpadded convolutions: a --size window reads
           --size + 14 pixels).  tools/reference/unet_gan_torch.py.
  cunet2   waifu2x CUNet 2x / Real-CUGAN UpCunet2x (reads --size + 36 pixels).
  omnisr   OmniSR x4 (4x_WTP_descreenton's configuration: 64 feat, 5 groups, window
           8).  tools/reference/omnisr_torch.py.

Weights are random with a fixed seed unless --state-dict is given (the FLOP
count, and hence the time, does not depend on the values).

Modes:
  eager          NCHW eager module
  channels_last  eager module and input in channels_last memory format
  torchscript    torch.jit.trace + torch.jit.freeze
  torchscript_ofi  as torchscript, then torch.jit.optimize_for_inference
  auto           times channels_last, torchscript and torchscript_ofi, each in
                 its own child process (1 warm-up run + 1 timed run), then
                 runs the fastest in this process; the children's memory
                 does not count towards this process's peak RSS.

Must be run with /usr/bin/python3 (Debian's python3-torch lives only there).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tools", "reference"))
import omnisr_torch  # noqa: E402
import unet_gan_torch  # noqa: E402

ARCHS = ("rrdbnet", "srvgg", "upconv7", "cunet2", "omnisr")
# OmniSR as 4x_WTP_descreenton.pth is configured (omnisr_torch.config_from_state).
OMNISR_CONFIG = {"in_ch": 3, "out_ch": 3, "num_feat": 64, "res_num": 5, "block_num": 1,
                 "window_size": 8, "scale": 4, "heads": 4, "ca_heads": 4, "se_hidden": 16,
                 "ffn_hidden": 64, "esa_channels": 16}
CONCRETE_MODES = ("channels_last", "torchscript", "torchscript_ofi", "eager")
AUTO_CANDIDATES = ("channels_last", "torchscript", "torchscript_ofi")
SEED = 20261124


# --------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------

def _conv3(cin, cout):
    return nn.Conv2d(cin, cout, 3, 1, 1)


class DenseBlock(nn.Module):
    """Residual dense block: 5 convs with dense concatenation, LeakyReLU 0.2,
    output scaled by 0.2 and added to the input."""

    def __init__(self, feat=64, grow=32):
        super().__init__()
        self.conv1 = _conv3(feat, grow)
        self.conv2 = _conv3(feat + grow, grow)
        self.conv3 = _conv3(feat + 2 * grow, grow)
        self.conv4 = _conv3(feat + 3 * grow, grow)
        self.conv5 = _conv3(feat + 4 * grow, feat)

    def forward(self, x):
        a1 = F.leaky_relu(self.conv1(x), 0.2)
        a2 = F.leaky_relu(self.conv2(torch.cat((x, a1), 1)), 0.2)
        a3 = F.leaky_relu(self.conv3(torch.cat((x, a1, a2), 1)), 0.2)
        a4 = F.leaky_relu(self.conv4(torch.cat((x, a1, a2, a3), 1)), 0.2)
        a5 = self.conv5(torch.cat((x, a1, a2, a3, a4), 1))
        return a5 * 0.2 + x


class RRDB(nn.Module):
    """Three dense blocks, output scaled by 0.2 and added to the input."""

    def __init__(self, feat=64, grow=32):
        super().__init__()
        self.rdb1 = DenseBlock(feat, grow)
        self.rdb2 = DenseBlock(feat, grow)
        self.rdb3 = DenseBlock(feat, grow)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """RRDBNet, scale 4 (parameter names match BasicSR's state dicts)."""

    def __init__(self, in_ch=3, out_ch=3, feat=64, blocks=23, grow=32):
        super().__init__()
        self.conv_first = _conv3(in_ch, feat)
        self.body = nn.Sequential(*[RRDB(feat, grow) for _ in range(blocks)])
        self.conv_body = _conv3(feat, feat)
        self.conv_up1 = _conv3(feat, feat)
        self.conv_up2 = _conv3(feat, feat)
        self.conv_hr = _conv3(feat, feat)
        self.conv_last = _conv3(feat, out_ch)

    def forward(self, x):
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(
            self.conv_up1(F.interpolate(feat, scale_factor=2.0, mode="nearest")), 0.2)
        feat = F.leaky_relu(
            self.conv_up2(F.interpolate(feat, scale_factor=2.0, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


class SRVGGNetCompact(nn.Module):
    """conv+PReLU, num_conv x (conv+PReLU), conv to out_ch*r^2, pixel shuffle,
    plus the nearest-upsampled input (parameter names match BasicSR's)."""

    def __init__(self, in_ch=3, out_ch=3, feat=64, num_conv=16, upscale=4):
        super().__init__()
        self.upscale = upscale
        layers = [_conv3(in_ch, feat), nn.PReLU(num_parameters=feat)]
        for _ in range(num_conv):
            layers += [_conv3(feat, feat), nn.PReLU(num_parameters=feat)]
        layers.append(_conv3(feat, out_ch * upscale * upscale))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=float(self.upscale), mode="nearest")


def build_model(arch, state_dict_path=None):
    torch.manual_seed(SEED)
    if arch == "rrdbnet":
        model = RRDBNet()
    elif arch == "srvgg":
        model = SRVGGNetCompact()
    elif arch in unet_gan_torch.BORDER:
        model = unet_gan_torch.build(arch)
    elif arch == "omnisr":
        if state_dict_path:
            return omnisr_torch.load_model(state_dict_path)[0]
        model = omnisr_torch.OmniSR(OMNISR_CONFIG)
    else:
        raise ValueError(f"unknown arch {arch!r}")
    if state_dict_path and state_dict_path.endswith(".safetensors"):  # kiln convert's output
        _, model = unet_gan_torch.load_model(state_dict_path)
        return model.eval()
    if state_dict_path:
        sd = torch.load(state_dict_path, map_location="cpu")
        # Real-ESRGAN release files wrap the weights in 'params_ema' or 'params'.
        for key in ("params_ema", "params"):
            if isinstance(sd, dict) and key in sd:
                sd = sd[key]
                break
        model.load_state_dict(sd, strict=True)
    return model.eval()


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def prepare(model, mode, example):
    """Returns (callable, input) for the given mode."""
    if mode == "eager":
        return model, example.contiguous()
    if mode == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        return model, example.contiguous(memory_format=torch.channels_last)
    if mode in ("torchscript", "torchscript_ofi"):
        x = example.contiguous()
        with torch.no_grad():
            traced = torch.jit.trace(model, x, check_trace=False)
        frozen = torch.jit.freeze(traced)
        if mode == "torchscript_ofi":
            frozen = torch.jit.optimize_for_inference(frozen)
        return frozen, x
    raise ValueError(f"unknown mode {mode!r}")


def time_runs(fn, x, warmup, repeat):
    runs = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        for _ in range(repeat):
            t0 = time.perf_counter()
            y = fn(x)
            runs.append(time.perf_counter() - t0)
            del y
    return runs


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return None
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def peak_rss_bytes():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def probe_auto(args):
    """Times each candidate mode in a child process; returns (best, probes)."""
    probes = {}
    for mode in AUTO_CANDIDATES:
        cmd = [sys.executable, os.path.abspath(__file__), "--arch", args.arch,
               "--size", str(args.size), "--threads", str(args.threads),
               "--repeat", "1", "--warmup", "1", "--mode", mode]
        if args.state_dict:
            cmd += ["--state-dict", args.state_dict]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=args.probe_timeout)
            line = [l for l in p.stdout.splitlines() if l.startswith("{")]
            if p.returncode != 0 or not line:
                err = (p.stderr.strip().splitlines() or ["no output"])[-1]
                probes[mode] = {"error": err[:300]}
            else:
                probes[mode] = json.loads(line[-1])["min_s"]
        except subprocess.TimeoutExpired:
            probes[mode] = {"error": "timeout"}
    timed = {m: t for m, t in probes.items() if isinstance(t, float)}
    if not timed:
        raise RuntimeError(f"every auto candidate failed: {probes}")
    return min(timed, key=timed.get), probes


def export_onnx(args):
    model = build_model(args.arch, args.state_dict)
    x = torch.rand(1, 3, args.size, args.size)
    dyn = {"input": {2: "height", 3: "width"}, "output": {2: "out_height", 3: "out_width"}}
    with torch.no_grad():
        torch.onnx.export(model, (x,), args.export_onnx, input_names=["input"],
                          output_names=["output"], dynamic_axes=dyn,
                          opset_version=args.opset, do_constant_folding=True)
    print(json.dumps({"exported": args.export_onnx, "arch": args.arch,
                      "opset": args.opset, "torch": torch.__version__,
                      "bytes": os.path.getsize(args.export_onnx)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=ARCHS, required=True)
    ap.add_argument("--size", type=int, default=64, help="input height and width")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--mode", choices=CONCRETE_MODES + ("auto",), default="auto")
    ap.add_argument("--state-dict", help="load real weights (.pth) instead of random ones")
    ap.add_argument("--export-onnx", metavar="PATH",
                    help="write the model as ONNX (dynamic H/W) and exit; no timing")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--probe-timeout", type=float, default=1800.0,
                    help="seconds allowed to each auto-mode probe process")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.export_onnx:
        export_onnx(args)
        return

    probes = None
    mode = args.mode
    if mode == "auto":
        mode, probes = probe_auto(args)

    model = build_model(args.arch, args.state_dict)
    torch.manual_seed(SEED + 1)
    # Networks of unpadded convolutions read their border around the window, as kiln's do.
    side = args.size + 2 * unet_gan_torch.BORDER.get(args.arch, 0)
    x = torch.rand(1, 3, side, side)
    fn, x = prepare(model, mode, x)
    runs = time_runs(fn, x, args.warmup, args.repeat)

    out = {
        "peer": "pytorch", "arch": args.arch, "size": args.size,
        "threads": args.threads, "mode": mode,
        "median_s": median(runs), "min_s": min(runs) if runs else None,
        "runs": runs, "peak_rss_bytes": peak_rss_bytes(),
        "torch": torch.__version__,
    }
    if probes is not None:
        out["auto_probe_s"] = probes
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
