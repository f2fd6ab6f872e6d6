#!/usr/bin/python3
"""Produce a reference upscale with the official realesrgan-ncnn-vulkan binary.

    /usr/bin/python3 tools/reference/run_ncnn_reference.py -m realesr-animevideov3-x4 IN.png OUT.png
    /usr/bin/python3 tools/reference/run_ncnn_reference.py -m realesrgan-x4plus IN.png OUT.png --cache DIR

The binary and its model folder come from scripts/fetch-models.sh
(third_party/bin/realesrgan-ncnn-vulkan, third_party/realesrgan/models/). It runs on
lavapipe, Mesa's CPU Vulkan driver (Debian's mesa-vulkan-drivers): VK_ICD_FILENAMES is
pointed at lavapipe unless already set, so results are the same on every machine.

Settings match kiln's Real-ESRGAN processing: one tile (-t 512; the binary's automatic
tiling splits even small images on lavapipe) and the binary's 10-px pre-pad, which it
applies only when the -m path contains "models". Note the binary's lavapipe defect
(negative values wrap to 255): compare with psnr.repair_lavapipe().
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
import time
from typing import Dict, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_BINARY = os.path.join(REPO, "third_party", "bin", "realesrgan-ncnn-vulkan")
DEFAULT_MODELS = os.path.join(REPO, "third_party", "realesrgan", "models")
DEFAULT_TILE = 512

ICD_DIRS = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")

sys.path.insert(0, HERE)
from psnr import sha256_file  # noqa: E402


def ncnn_model_args(model: str) -> Tuple[str, int]:
    """kiln model name -> (binary's -n name, -s scale).

    realesr-animevideov3-x2/x3/x4 are one -n name with -s picking the file;
    realesrgan-x4plus(-anime) are x4 models named as they are.
    """
    m = re.fullmatch(r"(realesr-animevideov3)-x([234])", model)
    if m:
        return m.group(1), int(m.group(2))
    m = re.search(r"x([234])", model)
    if m:
        return model, int(m.group(1))
    raise ValueError(f"cannot tell the scale of model {model!r}")


def lavapipe_icd() -> Optional[str]:
    for d in ICD_DIRS:
        hits = sorted(glob.glob(os.path.join(d, "lvp_icd*.json")))
        if hits:
            return hits[0]
    return None


def vulkan_problem() -> Optional[str]:
    """None when a Vulkan loader and a device (lavapipe, or VK_ICD_FILENAMES) exist,
    else a sentence saying what is missing."""
    try:
        ctypes.CDLL("libvulkan.so.1")
    except OSError:
        return "no Vulkan loader (libvulkan.so.1; apt-get install libvulkan1)"
    if os.environ.get("VK_ICD_FILENAMES"):
        return None
    if lavapipe_icd() is None:
        return "no lavapipe Vulkan driver (apt-get install mesa-vulkan-drivers)"
    return None


def vulkan_env() -> Dict[str, str]:
    env = dict(os.environ)
    if not env.get("VK_ICD_FILENAMES"):
        icd = lavapipe_icd()
        if icd:
            env["VK_ICD_FILENAMES"] = icd
    return env


def run_reference(model: str, in_png: str, out_png: str, binary: str = DEFAULT_BINARY,
                  models_dir: str = DEFAULT_MODELS, tile: int = DEFAULT_TILE,
                  gpu: Optional[int] = None, timeout: float = 600.0) -> float:
    """Run the binary once; returns its wall time in seconds. Raises on failure."""
    name, scale = ncnn_model_args(model)
    models_dir = os.path.abspath(models_dir)
    if "models" not in models_dir:
        raise ValueError(f"-m path {models_dir} must contain 'models' "
                         "(else the binary refuses it / skips its pre-pad)")
    for ext in ("param", "bin"):
        f = os.path.join(models_dir, f"{name}-x{scale}.{ext}" if name.endswith("animevideov3")
                         else f"{name}.{ext}")
        if not os.path.exists(f):
            raise FileNotFoundError(f"{f} missing (run scripts/fetch-models.sh)")
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"{binary} missing or not executable (run scripts/fetch-models.sh)")
    out_png = os.path.abspath(out_png)
    tmp = f"{out_png}.tmp{os.getpid()}.png"
    cmd = [binary, "-i", os.path.abspath(in_png), "-o", tmp, "-n", name, "-s", str(scale),
           "-t", str(tile), "-m", models_dir, "-f", "png"]
    if gpu is not None:
        cmd += ["-g", str(gpu)]
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=vulkan_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, text=True, errors="replace")
    dt = time.monotonic() - t0
    if r.returncode != 0 or not os.path.exists(tmp):
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise RuntimeError(f"reference binary failed (rc={r.returncode}): {' '.join(cmd)}\n"
                           f"{r.stdout[-2000:]}")
    os.replace(tmp, out_png)
    return dt


def cached_reference(model: str, in_png: str, cache_dir: str, binary: str = DEFAULT_BINARY,
                     models_dir: str = DEFAULT_MODELS, tile: int = DEFAULT_TILE,
                     timeout: float = 600.0) -> Tuple[str, bool, float]:
    """Reference output for (model, input), cached in cache_dir.

    The key covers the model name, tile size, input bytes, binary and model files, so a
    changed input or re-fetched binary never reuses a stale result.
    Returns (path, was_cached, seconds spent running the binary).
    """
    name, scale = ncnn_model_args(model)
    h = hashlib.sha256()
    h.update(f"{model}|{tile}|{os.environ.get('VK_ICD_FILENAMES') or lavapipe_icd()}|".encode())
    h.update(sha256_file(in_png).encode())
    h.update(sha256_file(binary).encode())
    stem = f"{name}-x{scale}" if name.endswith("animevideov3") else name
    h.update(sha256_file(os.path.join(models_dir, stem + ".param")).encode())
    key = h.hexdigest()[:24]
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"{model}-{key}.png")
    if os.path.exists(path):
        return path, True, 0.0
    dt = run_reference(model, in_png, path, binary, models_dir, tile, timeout=timeout)
    return path, False, dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True,
                    help="realesr-animevideov3-x2|x3|x4, realesrgan-x4plus, realesrgan-x4plus-anime")
    ap.add_argument("input", help="input image (png/jpg/webp)")
    ap.add_argument("output", help="output PNG")
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--models-dir", default=DEFAULT_MODELS,
                    help="folder with the ncnn models; its path must contain 'models'")
    ap.add_argument("--tile", type=int, default=DEFAULT_TILE)
    ap.add_argument("--gpu", type=int, default=None, help="Vulkan device index (-g)")
    ap.add_argument("--cache", default=None, help="reuse / store results in this folder")
    args = ap.parse_args()

    problem = vulkan_problem()
    if problem:
        print(f"run_ncnn_reference: {problem}", file=sys.stderr)
        return 1
    try:
        if args.cache:
            path, cached, dt = cached_reference(args.model, args.input, args.cache,
                                                args.binary, args.models_dir, args.tile)
            if os.path.abspath(path) != os.path.abspath(args.output):
                shutil.copyfile(path, args.output)
            print(f"{args.model}: {args.input} -> {args.output} "
                  + ("(cached)" if cached else f"({dt:.1f} s)"))
        else:
            dt = run_reference(args.model, args.input, args.output, args.binary,
                               args.models_dir, args.tile, args.gpu)
            print(f"{args.model}: {args.input} -> {args.output} ({dt:.1f} s)")
    except (OSError, ValueError, RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"run_ncnn_reference: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
