#!/usr/bin/python3
"""Reference test: `kiln forward` on waifu2x's UpConv7 / CUNet vs Debian's PyTorch.

The model (an ncnn file in --models-dir) is written out by `kiln convert` (canonical names,
architecture block), loaded into the PyTorch networks written in
tools/reference/unet_gan_torch.py from the published descriptions, and both run on the
same real photo crop /255, extended by the network's border with its edge pixels repeated.
The reference runs in float64; kiln's raw float32 output must agree to max|d| <= --max-abs
and PSNR >= --min-psnr on the 8-bit quantised images. This checks the network (layers,
skips, squeeze-excitation, crops) against an implementation that shares no code with kiln;
the processing around it is checked against the official binary (ncnn_vs_kiln.py).

Exit 0 pass, 1 fail, 77 skipped (weights or Debian's torch/numpy/PIL absent).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__

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
from psnr import check_against_float64, read_npy, read_png, write_npy  # noqa: E402
from unet_gan_torch import BORDER, load_model  # noqa: E402


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace")
    if r.returncode != 0:
        print(f"FAIL: {' '.join(cmd)} -> rc {r.returncode}\n{r.stdout[-3000:]}")
        sys.exit(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--third-party", default=None, help="unused (accepted for symmetry)")
    ap.add_argument("--data", default=os.path.join(REPO, "tests", "data", "reference"))
    ap.add_argument("--work", required=True)
    ap.add_argument("--cache", default=None, help="unused (accepted for symmetry)")
    ap.add_argument("--model", required=True, help="kiln model name, e.g. waifu2x-cunet-noise1")
    ap.add_argument("--image", required=True)
    ap.add_argument("--max-abs", type=float, default=1e-3)
    ap.add_argument("--min-psnr", type=float, default=70.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    if not os.path.exists(os.path.join(args.models_dir, args.model + ".param")):
        skip(f"{args.model}.param absent from {args.models_dir}: run scripts/fetch-models.sh")
    if not os.access(args.kiln, os.X_OK):
        print(f"FAIL: kiln binary {args.kiln} not found")
        return 1
    torch.set_num_threads(max(1, args.threads))
    os.makedirs(args.work, exist_ok=True)
    converted = os.path.join(args.work, f"{args.model}.safetensors")
    run([args.kiln, "-q", "convert", args.model, converted, "--models-dir", args.models_dir])
    arch, model = load_model(converted)
    b = BORDER[arch]

    src = args.image if os.path.isabs(args.image) else os.path.join(args.data, args.image)
    img = read_png(src).astype(np.float32) / np.float32(255.0)
    # CUNet halves twice: keep the crop a multiple of 4.
    h, w = img.shape[0] // 4 * 4, img.shape[1] // 4 * 4
    x = np.pad(img[:h, :w], ((b, b), (b, b), (0, 0)), mode="edge")[None]
    stem = os.path.splitext(os.path.basename(src))[0]
    in_npy = os.path.join(args.work, f"{args.model}-{stem}-in.npy")
    out_npy = os.path.join(args.work, f"{args.model}-{stem}-out.npy")
    write_npy(in_npy, x)
    run([args.kiln, "-q", "forward", "-m", args.model, "--models-dir", args.models_dir,
         "--device", "cpu", "--threads", str(args.threads), in_npy, out_npy])
    got = read_npy(out_npy).astype(np.float64)

    with torch.no_grad():
        t = torch.from_numpy(x).permute(0, 3, 1, 2).to(torch.float64)
        ref = model.to(torch.float64)(t).permute(0, 2, 3, 1).contiguous().numpy()
    ok = check_against_float64(f"model={args.model} ({arch}) image={stem} in={list(x.shape)}",
                               got, ref, args.max_abs, args.min_psnr)
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
