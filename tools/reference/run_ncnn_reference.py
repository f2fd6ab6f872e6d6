#!/usr/bin/python3
"""Produce a reference upscale with an official ncnn-vulkan program (nihui's binaries).

    /usr/bin/python3 tools/reference/run_ncnn_reference.py -m realesr-animevideov3-x4 IN.png OUT.png
    /usr/bin/python3 tools/reference/run_ncnn_reference.py -m realesrgan-x4plus IN.png OUT.png --cache DIR
    /usr/bin/python3 tools/reference/run_ncnn_reference.py -m waifu2x-cunet-noise1 IN.png OUT.png -v
    /usr/bin/python3 tools/reference/run_ncnn_reference.py -m realcugan-up2x-conservative --syncgap 0 IN.png OUT.png

The program is chosen by kiln's model name (the file stem in models/):
  realesrgan-x4plus(-anime), realesr-animevideov3-x2|x3|x4   realesrgan-ncnn-vulkan
  waifu2x-cunet-noiseN (1x), waifu2x-cunet-noiseN-scale2x,
  waifu2x-cunet-scale2x, waifu2x-upconv7-anime[-noiseN]-scale2x  waifu2x-ncnn-vulkan
  realcugan-upSx-{conservative,no-denoise,denoiseNx}         realcugan-ncnn-vulkan
The binaries and their model folders come from scripts/fetch-models.sh (third_party/bin/,
third_party/{realesrgan/models,waifu2x/models-*,realcugan/models-se}/). They run on lavapipe,
Mesa's CPU Vulkan driver (Debian's mesa-vulkan-drivers): VK_ICD_FILENAMES is pointed at
lavapipe unless already set, so results are the same on every machine.

Settings match kiln's processing: one tile (-t 512; the automatic tiling splits even small
images on lavapipe, and Real-CUGAN's squeeze-excitation then depends on the tiles), TTA off.
Each program picks its pre-pad from the -m path: realesrgan applies its 10-px pre-pad only
when the path contains "models"; waifu2x needs "models-cunet" or
"models-upconv_7_anime_style_art_rgb", realcugan "models-se", else they refuse the folder.
Note the programs' lavapipe defect (negative values wrap to 255): compare with
psnr.repair_lavapipe(). --syncgap (realcugan's -c) only matters when the image is larger
than the tile.
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
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_THIRD_PARTY = os.path.join(REPO, "third_party")
DEFAULT_BINARY = os.path.join(DEFAULT_THIRD_PARTY, "bin", "realesrgan-ncnn-vulkan")
DEFAULT_MODELS = os.path.join(DEFAULT_THIRD_PARTY, "realesrgan", "models")
DEFAULT_TILE = 512

ICD_DIRS = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")

sys.path.insert(0, HERE)
from psnr import sha256_file  # noqa: E402


@dataclass(frozen=True)
class ReferenceJob:
    """How one program reproduces one kiln model.

    models_dir is the -m folder (its path selects the program's pre-pad), stem the file
    stem the program opens in it, args the model-selecting options (-n, -s, -c).
    """

    model: str
    program: str  # file name in third_party/bin/
    models_dir: str
    stem: str
    args: Tuple[str, ...]
    scale: int
    must_contain: str  # substring the -m path needs

    def model_files(self) -> List[str]:
        return [os.path.join(self.models_dir, f"{self.stem}.{ext}") for ext in ("param", "bin")]


def ncnn_model_args(model: str) -> Tuple[str, int]:
    """Real-ESRGAN kiln model name -> (binary's -n name, -s scale).

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


WAIFU2X_DIRS = {"cunet": "models-cunet", "upconv7-anime": "models-upconv_7_anime_style_art_rgb"}


def reference_job(model: str, third_party: str = DEFAULT_THIRD_PARTY,
                  models_dir: Optional[str] = None,
                  syncgap: Optional[int] = None) -> ReferenceJob:
    """kiln model name -> the program, folder and options that reproduce it.

    models_dir overrides the -m folder. syncgap (realcugan -c 0..3) is passed only when
    given; the program's default is 3.
    """
    m = re.fullmatch(r"waifu2x-(cunet|upconv7-anime)(?:-noise([0-3]))?(-scale2x)?", model)
    if m:
        arch, noise, scale2 = m.group(1), m.group(2), m.group(3)
        if not scale2 and noise is None:
            raise ValueError(f"{model!r}: neither denoise nor scale")
        if not scale2 and arch != "cunet":
            raise ValueError(f"{model!r}: UpConv7 has 2x models only")
        folder = WAIFU2X_DIRS[arch]
        scale = 2 if scale2 else 1
        # waifu2x-ncnn-vulkan main.cpp: -n -1 opens scale2.0x_model, -s 1 noiseN_model,
        # -s 2 noiseN_scale2.0x_model
        stem = (f"noise{noise}_scale2.0x_model" if noise is not None and scale2
                else f"noise{noise}_model" if noise is not None else "scale2.0x_model")
        n = noise if noise is not None else "-1"
        if syncgap is not None:
            raise ValueError("--syncgap is a realcugan option")
        return ReferenceJob(model, "waifu2x-ncnn-vulkan",
                            models_dir or os.path.join(third_party, "waifu2x", folder), stem,
                            ("-n", str(n), "-s", str(scale)), scale, folder)

    m = re.fullmatch(r"realcugan-up([234])x-(conservative|no-denoise|denoise([123])x)", model)
    if m:
        scale = int(m.group(1))
        # realcugan-ncnn-vulkan main.cpp: -n -1 conservative, 0 no-denoise, N denoiseNx
        n = {"conservative": "-1", "no-denoise": "0"}.get(m.group(2), m.group(3))
        args: Tuple[str, ...] = ("-n", n, "-s", str(scale))
        if syncgap is not None:
            if syncgap not in (0, 1, 2, 3):
                raise ValueError(f"syncgap {syncgap} not in 0..3")
            args += ("-c", str(syncgap))
        return ReferenceJob(model, "realcugan-ncnn-vulkan",
                            models_dir or os.path.join(third_party, "realcugan", "models-se"),
                            f"up{scale}x-{m.group(2)}", args, scale, "models-se")

    if model.startswith(("waifu2x-", "realcugan-")):
        raise ValueError(f"unknown model {model!r} (waifu2x-{{cunet,upconv7-anime}}[-noiseN]"
                         "[-scale2x], realcugan-upSx-{conservative,no-denoise,denoiseNx})")
    name, scale = ncnn_model_args(model)
    if syncgap is not None:
        raise ValueError("--syncgap is a realcugan option")
    stem = f"{name}-x{scale}" if name.endswith("animevideov3") else name
    return ReferenceJob(model, "realesrgan-ncnn-vulkan",
                        models_dir or os.path.join(third_party, "realesrgan", "models"), stem,
                        ("-n", name, "-s", str(scale)), scale, "models")


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


def job_binary(job: ReferenceJob, third_party: str = DEFAULT_THIRD_PARTY) -> str:
    return os.path.join(third_party, "bin", job.program)


def missing_files(job: ReferenceJob, binary: str) -> Optional[str]:
    """None when the binary and the model files exist, else what is missing."""
    for f in job.model_files():
        if not os.path.exists(f):
            return f"{f} absent (run scripts/fetch-models.sh)"
    if not os.access(binary, os.X_OK):
        return f"{binary} absent or not executable (run scripts/fetch-models.sh)"
    return None


def reference_command(job: ReferenceJob, in_png: str, out_png: str, binary: str,
                      tile: int = DEFAULT_TILE, gpu: Optional[int] = None) -> List[str]:
    models_dir = os.path.abspath(job.models_dir)
    if job.must_contain not in models_dir:
        raise ValueError(f"-m path {models_dir} must contain {job.must_contain!r} "
                         f"({job.program} picks its pre-pad from it or refuses it)")
    cmd = [binary, "-i", os.path.abspath(in_png), "-o", os.path.abspath(out_png),
           *job.args, "-t", str(tile), "-m", models_dir, "-f", "png"]
    if gpu is not None:
        cmd += ["-g", str(gpu)]
    return cmd


def run_job(job: ReferenceJob, in_png: str, out_png: str, binary: Optional[str] = None,
            tile: int = DEFAULT_TILE, gpu: Optional[int] = None,
            timeout: float = 600.0, verbose: bool = False) -> float:
    """Run the program once; returns its wall time in seconds. Raises on failure."""
    binary = binary or job_binary(job)
    problem = missing_files(job, binary)
    if problem:
        raise FileNotFoundError(problem)
    out_png = os.path.abspath(out_png)
    tmp = f"{out_png}.tmp{os.getpid()}.png"
    cmd = reference_command(job, in_png, tmp, binary, tile, gpu)
    env = vulkan_env()
    if verbose:
        print(f"VK_ICD_FILENAMES={env.get('VK_ICD_FILENAMES', '')} {' '.join(cmd)}")
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, text=True, errors="replace")
    dt = time.monotonic() - t0
    if r.returncode != 0 or not os.path.exists(tmp):
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise RuntimeError(f"reference binary failed (rc={r.returncode}): {' '.join(cmd)}\n"
                           f"{r.stdout[-2000:]}")
    os.replace(tmp, out_png)
    return dt


def cache_key(job: ReferenceJob, in_png: str, binary: str, tile: int) -> str:
    """Covers the model name, options, tile size, Vulkan driver, input bytes, binary and
    model files, so a changed input or re-fetched binary never reuses a stale result."""
    icd = os.environ.get("VK_ICD_FILENAMES") or lavapipe_icd()
    h = hashlib.sha256()
    if job.program == "realesrgan-ncnn-vulkan":
        # the key this script has always used (keeps existing caches valid)
        h.update(f"{job.model}|{tile}|{icd}|".encode())
        h.update(sha256_file(in_png).encode())
        h.update(sha256_file(binary).encode())
        h.update(sha256_file(job.model_files()[0]).encode())
    else:
        h.update(f"{job.model}|{' '.join(job.args)}|{tile}|{icd}|".encode())
        for f in [in_png, binary, *job.model_files()]:
            h.update(sha256_file(f).encode())
    return h.hexdigest()[:24]


def cached_job(job: ReferenceJob, in_png: str, cache_dir: str, binary: Optional[str] = None,
               tile: int = DEFAULT_TILE, timeout: float = 600.0,
               verbose: bool = False) -> Tuple[str, bool, float]:
    """Reference output for (job, input), cached in cache_dir.

    Returns (path, was_cached, seconds spent running the binary).
    """
    binary = binary or job_binary(job)
    problem = missing_files(job, binary)
    if problem:
        raise FileNotFoundError(problem)
    key = cache_key(job, in_png, binary, tile)
    os.makedirs(cache_dir, exist_ok=True)
    tag = "-".join(job.args[i + 1] for i in range(0, len(job.args), 2)
                   if job.args[i] == "-c")
    path = os.path.join(cache_dir, f"{job.model}{'-c' + tag if tag else ''}-{key}.png")
    if os.path.exists(path):
        return path, True, 0.0
    dt = run_job(job, in_png, path, binary, tile, timeout=timeout, verbose=verbose)
    return path, False, dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True,
                    help="kiln model name, e.g. realesr-animevideov3-x4, waifu2x-cunet-noise1, "
                         "waifu2x-upconv7-anime-noise2-scale2x, realcugan-up2x-conservative")
    ap.add_argument("input", help="input image (png/jpg/webp)")
    ap.add_argument("output", help="output PNG")
    ap.add_argument("--third-party", default=DEFAULT_THIRD_PARTY,
                    help="folder with bin/ and the programs' model folders")
    ap.add_argument("--binary", default=None, help="the program (default: from --third-party)")
    ap.add_argument("--models-dir", default=None,
                    help="the program's model folder (-m); its path selects the pre-pad")
    ap.add_argument("--syncgap", type=int, default=None,
                    help="realcugan -c: 0 off, 1 accurate, 2 rough, 3 very rough (its default)")
    ap.add_argument("--tile", type=int, default=DEFAULT_TILE)
    ap.add_argument("--gpu", type=int, default=None, help="Vulkan device index (-g)")
    ap.add_argument("--cache", default=None, help="reuse / store results in this folder")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the command run")
    args = ap.parse_args()

    problem = vulkan_problem()
    if problem:
        print(f"run_ncnn_reference: {problem}", file=sys.stderr)
        return 1
    try:
        job = reference_job(args.model, args.third_party, args.models_dir, args.syncgap)
        binary = args.binary or job_binary(job, args.third_party)
        if args.cache:
            path, cached, dt = cached_job(job, args.input, args.cache, binary, args.tile,
                                          verbose=args.verbose)
            if os.path.abspath(path) != os.path.abspath(args.output):
                shutil.copyfile(path, args.output)
            print(f"{args.model}: {args.input} -> {args.output} "
                  + ("(cached)" if cached else f"({dt:.1f} s)"))
        else:
            dt = run_job(job, args.input, args.output, binary, args.tile, args.gpu,
                         verbose=args.verbose)
            print(f"{args.model}: {args.input} -> {args.output} ({dt:.1f} s)")
    except (OSError, ValueError, RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"run_ncnn_reference: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
