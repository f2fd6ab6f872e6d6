#!/usr/bin/python3
"""Reference test: kiln's upscale vs the official ncnn-vulkan programs.

For each input image: run the program on lavapipe with one tile (realesrgan-ncnn-vulkan for
the Real-ESRGAN models, waifu2x-ncnn-vulkan for waifu2x-*, realcugan-ncnn-vulkan for
realcugan-*; cached by model, options and input hash), run
`kiln upscale -m MODEL --tile 0 --device cpu`, repair the programs' lavapipe defect (negative
values wrapped to 255), and require PSNR >= --min-psnr on the 8-bit images.

The model is named as in kiln's models folder (scripts/fetch-models.sh):
  waifu2x-cunet-noiseN            1x denoise            (-n N -s 1, models-cunet)
  waifu2x-cunet-noiseN-scale2x    denoise + 2x          (-n N -s 2)
  waifu2x-cunet-scale2x           2x                    (-n -1 -s 2)
  waifu2x-upconv7-anime[-noiseN]-scale2x                (models-upconv_7_anime_style_art_rgb)
  realcugan-upSx-{conservative,no-denoise,denoiseNx}    (-n -1/0/N -s S, models-se)
  realesrgan-x4plus[-anime], realesr-animevideov3-xS    (-n NAME -s S, models)
Images must fit one tile (<= 512 px) so that the program's squeeze-excitation sees the
whole image, as kiln's --tile 0 does. With --tile T both run tiles of T px instead (the
program -t T, kiln --tile T --tile-pad 0: the same windows when the image's sides are
multiples of T) and --syncgap S is passed to both (realcugan -c S, kiln --syncgap S, 0..2):
Real-CUGAN's shared squeeze-excitation means across tiles. With --alpha each image gets a synthetic alpha channel
first (a smooth pattern with hard edges), which the waifu2x and Real-CUGAN programs resize
bicubically instead of running through the network.

Exit 0 pass, 1 fail, 77 skipped (weights, program, Vulkan driver or Debian's Python
packages absent).
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
from psnr import check_against_reference, read_png, write_png  # noqa: E402
from run_ncnn_reference import (DEFAULT_TILE, cached_job, job_binary, missing_files,  # noqa: E402
                                reference_job, vulkan_problem)


def with_alpha(src: str, dst: str) -> str:
    """Writes src's RGB with an alpha channel: a smooth wave, a fully transparent disc and an
    opaque band (hard edges), so that a resize and a network's output differ visibly."""
    rgb = read_png(src)[:, :, :3]
    h, w = rgb.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    a = 0.5 + 0.45 * np.sin(x / 5.0) * np.cos(y / 7.0)
    a[(x - w / 3) ** 2 + (y - h / 2) ** 2 < (min(h, w) / 5) ** 2] = 0.0
    a[:, (x[0] >= 0.7 * w) & (x[0] < 0.8 * w)] = 1.0
    rgba = np.dstack([rgb, np.round(a * 255).astype(np.uint8)])
    write_png(dst, rgba)
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models-dir", required=True, help="kiln's models folder")
    ap.add_argument("--third-party", default=os.path.join(REPO, "third_party"))
    ap.add_argument("--data", default=os.path.join(REPO, "tests", "data", "reference"))
    ap.add_argument("--work", required=True, help="folder for kiln's outputs")
    ap.add_argument("--cache", required=True, help="folder caching the program's outputs")
    ap.add_argument("--model", required=True)
    ap.add_argument("--syncgap", type=int, default=None,
                    help="realcugan -c (0..3); irrelevant with one tile")
    ap.add_argument("--tile", type=int, default=None,
                    help="tiles of this many px in both (image sides must be multiples)")
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--min-psnr", type=float, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--alpha", action="store_true", help="add an alpha channel to each image")
    args = ap.parse_args()

    try:
        job = reference_job(args.model, args.third_party, syncgap=args.syncgap)
    except ValueError as e:
        print(f"FAIL: {e}")
        return 1
    binary = job_binary(job, args.third_party)
    for ext in ("param", "bin"):
        f = os.path.join(args.models_dir, f"{args.model}.{ext}")
        if not os.path.exists(f):
            skip(f"{f} absent: run scripts/fetch-models.sh")
    problem = missing_files(job, binary)
    if problem:
        skip(problem)
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
        if args.alpha:
            stem += "-rgba"
            src = with_alpha(src, os.path.join(args.work, f"{stem}.png"))
        inp = read_png(src, 4 if args.alpha else 3)
        if args.tile and (inp.shape[0] % args.tile or inp.shape[1] % args.tile):
            print(f"FAIL: {stem}: {inp.shape[1]}x{inp.shape[0]} is not a multiple of the tile "
                  f"({args.tile}); the programs' last tiles would differ")
            failures.append(stem)
            continue
        if max(inp.shape[:2]) > DEFAULT_TILE:
            print(f"FAIL: {stem}: {inp.shape[1]}x{inp.shape[0]} is larger than the program's "
                  f"one tile ({DEFAULT_TILE}); its tiles would change the result")
            failures.append(stem)
            continue

        try:
            ref_path, cached, ref_s = cached_job(job, src, args.cache, binary,
                                                 args.tile or DEFAULT_TILE)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"FAIL: {stem}: reference program: {e}")
            failures.append(stem)
            continue

        out = os.path.join(args.work, f"{args.model}-{stem}.png")
        if os.path.exists(out):
            os.unlink(out)
        cmd = [args.kiln, "upscale", "-m", args.model, src, out, "--models-dir", args.models_dir,
               "--tile", str(args.tile or 0), "--device", "cpu", "--threads", str(args.threads)]
        if args.tile:
            cmd += ["--tile-pad", "0"]
            if args.syncgap is not None:
                cmd += ["--syncgap", str(args.syncgap)]
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace")
        kiln_s = time.monotonic() - t0
        if r.returncode != 0 or not os.path.exists(out):
            print(f"FAIL: kiln could not upscale {stem} with {args.model} (rc {r.returncode}; "
                  f"does kiln serve this model?)\n      {' '.join(cmd)}\n{r.stdout[-3000:]}")
            failures.append(stem)
            continue

        want_shape = (inp.shape[0] * job.scale, inp.shape[1] * job.scale, inp.shape[2])
        timing = f"kiln={kiln_s:.2f}s {job.program}={'cached' if cached else f'{ref_s:.1f}s'}"
        if not check_against_reference(args.model, stem, ref_path, out, want_shape,
                                       args.min_psnr, timing):
            failures.append(stem)

    if failures:
        print(f"FAILED: {args.model}: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
