"""Shared helpers for kiln's reference comparisons.

PSNR on 8-bit images, the repair of the ncnn reference binary's lavapipe defect,
the 8-bit quantisation Real-ESRGAN uses, and PNG / .npy I/O.

Needs Debian's numpy and PIL: run with /usr/bin/python3.
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Tuple

import numpy as np
from PIL import Image


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two arrays of equal shape (inf when identical).

    Computed in float64; for 8-bit images pass uint8 arrays and peak 255.
    """
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    d = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(d * d))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def quantise(v: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8, as Real-ESRGAN does: floor(clamp(v,0,1)*255 + 0.5)."""
    v = np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0)
    return np.floor(v * 255.0 + 0.5).astype(np.uint8)


def repair_lavapipe(reference: np.ndarray, test: np.ndarray) -> Tuple[np.ndarray, int]:
    """Undo the ncnn-vulkan binary's defect on lavapipe.

    Its final float->uint conversion wraps negative values to 255, which shows as white
    specks in dark areas. Where the reference says 255 and the engine under test says
    < 128, the true value is 0. Returns (repaired copy of reference, values repaired).
    """
    if reference.shape != test.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {test.shape}")
    mask = (reference == 255) & (test < 128)
    fixed = reference.copy()
    fixed[mask] = 0
    return fixed, int(mask.sum())


def read_png(path: str, channels: int = 3) -> np.ndarray:
    """PNG (or any PIL-readable image) -> uint8 HxWx3 RGB (channels 4: HxWx4 RGBA)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA" if channels == 4 else "RGB"), dtype=np.uint8).copy()


def write_png(path: str, img: np.ndarray) -> None:
    """uint8 HxWx3 (or HxWx4) -> PNG, written to a temporary name and renamed."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"write_png wants uint8, got {img.dtype}")
    tmp = f"{path}.tmp{os.getpid()}.png"
    Image.fromarray(img).save(tmp)
    os.replace(tmp, path)


def read_npy(path: str) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def write_npy(path: str, arr: np.ndarray) -> None:
    """Write a little-endian float32 C-contiguous .npy (the layout kiln reads)."""
    arr = np.ascontiguousarray(arr, dtype="<f4")
    tmp = f"{path}.tmp{os.getpid()}.npy"
    np.save(tmp, arr, allow_pickle=False)
    os.replace(tmp, path)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def format_db(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.2f}"


def check_against_reference(model: str, stem: str, ref_path: str, out_path: str,
                            want_shape: Tuple[int, int, int], min_psnr: float,
                            timing: str) -> bool:
    """Compares kiln's PNG with an official binary's (after repair_lavapipe), prints one
    line (PSNR, raw PSNR, values repaired, largest difference, `timing`) and returns
    whether the PSNR reaches min_psnr and the shapes are as wanted."""
    ref = read_png(ref_path, want_shape[2])
    got = read_png(out_path, want_shape[2])
    if got.shape != want_shape or ref.shape != want_shape:
        print(f"FAIL: {stem}: shapes kiln {got.shape}, reference {ref.shape}, want {want_shape}")
        return False
    raw = psnr(ref, got)
    fixed, repaired = repair_lavapipe(ref, got)
    value = psnr(fixed, got)
    d = np.abs(fixed.astype(np.int16) - got.astype(np.int16))
    ok = value >= min_psnr
    print(f"{'ok  ' if ok else 'FAIL'} model={model} image={stem} "
          f"PSNR={format_db(value)} dB (min {min_psnr:g}; raw {format_db(raw)} dB) "
          f"repaired={repaired}/{ref.size} values  max|d|={int(d.max())} "
          f"values|d|>2={int((d > 2).sum())}  {timing}")
    if not ok:
        print(f"      kiln: {out_path}\n      reference: {ref_path}")
    return ok


def check_against_float64(label: str, got: np.ndarray, ref: np.ndarray, max_abs: float,
                          min_psnr: float, extra: str = "") -> bool:
    """Compares kiln's raw float output with a float64 reference network's: shapes, finite
    values, max |d| <= max_abs and 8-bit PSNR >= min_psnr. Prints one line (`label`, the
    shapes, both figures, `extra`) and returns whether both bounds hold."""
    if got.shape != ref.shape:
        print(f"FAIL: {label}: kiln output shape {got.shape}, reference {ref.shape}")
        return False
    if not np.all(np.isfinite(got)):
        print(f"FAIL: {label}: kiln output has {int((~np.isfinite(got)).sum())} non-finite values")
        return False
    d = float(np.max(np.abs(got.astype(np.float64) - ref)))
    value = psnr(quantise(ref), quantise(got))
    ok = d <= max_abs and value >= min_psnr
    print(f"{'ok  ' if ok else 'FAIL'} {label} out={list(got.shape)} max|d|={d:.3g} "
          f"(max {max_abs:g}) PSNR8={format_db(value)} dB (min {min_psnr:g})  {extra}".rstrip())
    return ok
