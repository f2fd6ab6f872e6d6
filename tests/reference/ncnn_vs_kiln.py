#!/usr/bin/python3
"""Reference test: kiln's Real-ESRGAN upscale vs the official realesrgan-ncnn-vulkan.

For each input image: run the reference binary on lavapipe (cached by model and input
hash), run `kiln upscale --tile 0 --device cpu`, repair the binary's lavapipe defect
(negative values wrapped to 255), and require PSNR >= --min-psnr on the 8-bit images.

Exit 0 pass, 1 fail, 77 skipped (weights, reference binary, Vulkan driver or Debian's
Python packages absent).
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
    import numpy as np  # noqa: F401
    import PIL  # noqa: F401
except ImportError as e:
    skip(f"{e.name} missing: run this with Debian's /usr/bin/python3 (scripts/install-deps.sh)")

sys.path.insert(0, os.path.join(REPO, "tools", "reference"))
from psnr import check_against_reference, read_png  # noqa: E402
from run_ncnn_reference import cached_reference, ncnn_model_args, vulkan_problem  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models-dir", required=True, help="kiln's models folder")
    ap.add_argument("--third-party", default=os.path.join(REPO, "third_party"))
    ap.add_argument("--data", default=os.path.join(REPO, "tests", "data", "reference"))
    ap.add_argument("--work", required=True, help="folder for kiln's outputs")
    ap.add_argument("--cache", required=True, help="folder caching the binary's outputs")
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--min-psnr", type=float, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    name, scale = ncnn_model_args(args.model)
    binary = os.path.join(args.third_party, "bin", "realesrgan-ncnn-vulkan")
    ncnn_models = os.path.join(args.third_party, "realesrgan", "models")
    for ext in ("param", "bin"):
        f = os.path.join(args.models_dir, f"{args.model}.{ext}")
        if not os.path.exists(f):
            skip(f"{f} absent: run scripts/fetch-models.sh")
        if not os.path.exists(os.path.join(ncnn_models, f"{args.model}.{ext}")):
            skip(f"{ncnn_models}/{args.model}.{ext} absent: run scripts/fetch-models.sh")
    if not os.access(binary, os.X_OK):
        skip(f"{binary} absent: run scripts/fetch-models.sh")
    problem = vulkan_problem()
    if problem:
        skip(problem)
    if not os.access(args.kiln, os.X_OK):
        print(f"FAIL: kiln binary {args.kiln} not found")
        return 1

    os.makedirs(args.work, exist_ok=True)
    failures = []
    for image in args.images:
        src = image if os.path.isabs(image) else os.path.join(args.data, image)
        stem = os.path.splitext(os.path.basename(src))[0]

        ref_path, cached, ref_s = cached_reference(args.model, src, args.cache, binary, ncnn_models)

        out = os.path.join(args.work, f"{args.model}-{stem}.png")
        if os.path.exists(out):
            os.unlink(out)
        cmd = [args.kiln, "upscale", "-m", args.model, src, out, "--models-dir", args.models_dir,
               "--tile", "0", "--device", "cpu", "--threads", str(args.threads)]
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace")
        kiln_s = time.monotonic() - t0
        if r.returncode != 0 or not os.path.exists(out):
            print(f"FAIL: {' '.join(cmd)} -> rc {r.returncode}\n{r.stdout[-3000:]}")
            failures.append(stem)
            continue

        inp = read_png(src)
        want_shape = (inp.shape[0] * scale, inp.shape[1] * scale, 3)
        timing = f"kiln={kiln_s:.2f}s ncnn={'cached' if cached else f'{ref_s:.1f}s'}"
        if not check_against_reference(args.model, stem, ref_path, out, want_shape,
                                       args.min_psnr, timing):
            failures.append(stem)

    if failures:
        print(f"FAILED: {args.model}: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
