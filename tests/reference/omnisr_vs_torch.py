#!/usr/bin/python3
"""Reference test: `kiln forward` on an OmniSR .pth model vs Debian's PyTorch.

The .pth in --models-dir is loaded (strictly) into the PyTorch OmniSR written in
tools/reference/omnisr_torch.py from the published description, and both run on the same
real photo crop /255 (--crop HxW[+top+left] picks a part of it; a size that is not a
multiple of the window exercises the network's zero padding and crop). The reference runs
in float64; kiln's raw float32 output must agree to max|d| <= --max-abs and PSNR >=
--min-psnr on the 8-bit quantised images. This checks the network (MBConv, block and grid
window attention with the relative position bias, channel attention, gated feed-forwards,
ESA, the padding) against an implementation that shares no code with kiln.

Exit 0 pass, 1 fail, 77 skipped (weights or Debian's torch/numpy/PIL absent).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def skip(msg: str) -> None:
    print(f"SKIPPED: {msg}")
    sys.exit(SKIP)


try:
    import numpy as np
    import PIL  # noqa: F401
    import torch
except ImportError as e:
    skip(f"{e.name} missing: run this with Debian's /usr/bin/python3 (scripts/install-deps.sh)")

sys.path.insert(0, os.path.join(REPO, "tools", "reference"))
from omnisr_torch import forward_nhwc, load_model  # noqa: E402
from psnr import check_against_float64, read_npy, read_png, write_npy  # noqa: E402


def parse_crop(spec: str):
    """'HxW' or 'HxW+top+left' -> (h, w, top, left)."""
    m = re.fullmatch(r"(\d+)x(\d+)(?:\+(\d+)\+(\d+))?", spec)
    if not m:
        raise argparse.ArgumentTypeError(f"--crop {spec!r}: want HxW or HxW+top+left")
    h, w, top, left = (int(g) if g is not None else 0 for g in m.groups())
    return h, w, top, left


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--third-party", default=None, help="unused (accepted for symmetry)")
    ap.add_argument("--data", default=os.path.join(REPO, "tests", "data", "reference"))
    ap.add_argument("--work", required=True)
    ap.add_argument("--cache", default=None, help="unused (accepted for symmetry)")
    ap.add_argument("--model", required=True,
                    help="file name in --models-dir, e.g. 4x_WTP_descreenton.pth")
    ap.add_argument("--kiln-model", default=None, help="-m value for kiln (default: file stem)")
    ap.add_argument("--image", required=True)
    ap.add_argument("--crop", type=parse_crop, default=None, help="HxW[+top+left] of the image")
    ap.add_argument("--max-abs", type=float, default=1e-3)
    ap.add_argument("--min-psnr", type=float, default=70.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    pth = os.path.join(args.models_dir, args.model)
    if not os.path.exists(pth):
        skip(f"{pth} absent: run scripts/fetch-models.sh")
    if not os.access(args.kiln, os.X_OK):
        print(f"FAIL: kiln binary {args.kiln} not found")
        return 1
    kiln_model = args.kiln_model or os.path.splitext(args.model)[0]
    torch.set_num_threads(max(1, args.threads))

    src = args.image if os.path.isabs(args.image) else os.path.join(args.data, args.image)
    img = read_png(src)
    stem = os.path.splitext(os.path.basename(src))[0]
    if args.crop:
        h, w, top, left = args.crop
        if top + h > img.shape[0] or left + w > img.shape[1]:
            print(f"FAIL: --crop {h}x{w}+{top}+{left} outside {src} ({img.shape[0]}x{img.shape[1]})")
            return 1
        img = img[top:top + h, left:left + w]
        stem += f"-{h}x{w}+{top}+{left}"
    x = (img.astype(np.float32) / np.float32(255.0))[None]  # NHWC [1,H,W,3]
    os.makedirs(args.work, exist_ok=True)
    in_npy = os.path.join(args.work, f"{kiln_model}-{stem}-in.npy")
    out_npy = os.path.join(args.work, f"{kiln_model}-{stem}-out.npy")
    write_npy(in_npy, x)
    if os.path.exists(out_npy):
        os.unlink(out_npy)

    model, key = load_model(pth)  # strict: every tensor used, none missing
    ref64 = forward_nhwc(model, x, torch.float64)
    ref32 = forward_nhwc(model, x, torch.float32)

    cmd = [args.kiln, "-q", "forward", "-m", kiln_model, "--models-dir", args.models_dir,
           "--device", "cpu", "--threads", str(args.threads), in_npy, out_npy]
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace")
    kiln_s = time.monotonic() - t0
    if r.returncode != 0 or not os.path.exists(out_npy):
        print(f"FAIL: {' '.join(cmd)} -> rc {r.returncode}\n{r.stdout[-3000:]}")
        return 1
    got = read_npy(out_npy)
    ok = check_against_float64(
        f"model={args.model} ({key}) image={stem} in={list(x.shape)}", got, ref64, args.max_abs,
        args.min_psnr,
        f"[torch fp32 vs fp64: max|d|={float(np.max(np.abs(ref32 - ref64))):.3g}]  "
        f"kiln={kiln_s:.2f}s")
    if not ok:
        print(f"      kiln output: {out_npy}")
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
