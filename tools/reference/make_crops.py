#!/usr/bin/python3
"""Write the small real-photo crops the reference tests use to tests/data/reference/.

    /usr/bin/python3 tools/reference/make_crops.py [--out DIR] [--check]

The source photos are scikit-image's bundled sample images (Debian's python3-skimage;
see skimage/data/README.txt and skimage.data's docstrings for their provenance and
licences). --check verifies the committed files instead of writing them.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from psnr import read_png, write_png  # noqa: E402

# file name -> (skimage.data function, top, left, size)
CROPS = {
    "astronaut-face-64.png": ("astronaut", 110, 190, 64),
    "chelsea-eye-64.png": ("chelsea", 100, 180, 64),
    "coffee-cup-64.png": ("coffee", 150, 250, 64),
    "rocket-64.png": ("rocket", 150, 280, 64),
    "chelsea-fur-32.png": ("chelsea", 110, 200, 32),
}


def make(name: str) -> np.ndarray:
    import skimage.data

    fn, top, left, size = CROPS[name]
    img = getattr(skimage.data, fn)()
    crop = np.ascontiguousarray(img[top:top + size, left:left + size, :3])
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8, crop.shape
    return crop


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "reference"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    bad = 0
    for name in CROPS:
        path = os.path.join(args.out, name)
        crop = make(name)
        if args.check:
            ok = os.path.exists(path) and np.array_equal(read_png(path), crop)
            print(f"{name}: {'ok' if ok else 'DIFFERS'}")
            bad += not ok
        else:
            write_png(path, crop)
            print(f"{name}: {crop.shape[1]}x{crop.shape[0]} written")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
