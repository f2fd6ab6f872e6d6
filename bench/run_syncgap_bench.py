#!/usr/bin/python3
"""Tiled Real-CUGAN with and without shared squeeze-excitation means: time and fidelity.

    /usr/bin/python3 bench/run_syncgap_bench.py --kiln build-cpu/app/kiln --models models \
        [--model realcugan-up2x-conservative] [--tile 96] [--repeat 3] [--threads 2]

Runs `kiln upscale` on a photo (scikit-image's chelsea, 451x300) once as one tile and then
tiled with every --syncgap mode (0 none, 1 block by block, 2 averaged), --repeat times each,
and reports the median wall time (the whole process: load, probe passes, tiles, PNG) and
each tiled output's PSNR and largest difference against the one-tile output. Writes
results/<date>-<cpu>-syncgap.{json,md}. Needs Debian's numpy, PIL and skimage.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tools", "reference"))

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
from psnr import format_db, psnr, read_png, write_png  # noqa: E402


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed_upscale(args, src: str, dst: str, extra: list) -> float:
    cmd = [args.kiln, "upscale", "-m", args.model, src, dst, "--models-dir", args.models,
           "--device", "cpu", "--threads", str(args.threads), *extra]
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"kiln failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models", required=True, help="kiln's models folder")
    ap.add_argument("--model", default="realcugan-up2x-conservative")
    ap.add_argument("--tile", type=int, default=96)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="kiln-syncgap-")
    src = os.path.join(work, "chelsea.png")
    write_png(src, skimage.data.chelsea())
    rows = []
    runs = [("one tile", ["--tile", "0"])] + [
        (f"tile {args.tile}, syncgap {m}", ["--tile", str(args.tile), "--syncgap", str(m)])
        for m in (0, 1, 2)]
    whole = None
    for label, extra in runs:
        dst = os.path.join(work, f"{len(rows)}.png")
        times = [timed_upscale(args, src, dst, extra) for _ in range(args.repeat)]
        out = read_png(dst).astype(np.int16)
        row = {"run": label, "args": extra, "median_s": statistics.median(times), "times_s": times}
        if whole is None:
            whole = out
        else:
            row["psnr_vs_one_tile_db"] = psnr(whole, out)
            row["max_abs_diff"] = int(np.abs(whole - out).max())
        rows.append(row)
        print(json.dumps(row))

    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    facts = {"date": datetime.date.today().isoformat(), "cpu": cpu_name(),
             "cores": os.cpu_count(), "kiln_commit": commit, "model": args.model,
             "image": "skimage chelsea 451x300", "threads": args.threads,
             "repeat": args.repeat}
    slug = re.sub(r"[^a-z0-9]+", "-", facts["cpu"].lower()).strip("-")
    slug = re.sub(r"-(processor|cpu)$", "", slug)[:48] or "cpu"
    stem = os.path.join(args.out, f"{facts['date']}-{slug}-syncgap")
    os.makedirs(args.out, exist_ok=True)
    with open(stem + ".json", "w") as f:
        json.dump({"machine": facts, "rows": rows}, f, indent=1)
    lines = [f"# Tiled Real-CUGAN, shared SE means ({facts['date']})", "",
             f"`{args.model}` on {facts['image']}, {facts['cpu']} ({facts['cores']} cores), "
             f"{args.threads} threads, kiln {commit}; median of {args.repeat} runs of the whole "
             "`kiln upscale` process. Command: `/usr/bin/python3 bench/run_syncgap_bench.py "
             f"--kiln KILN --models models --tile {args.tile} --repeat {args.repeat}`.", "",
             "| run | median | vs one tile: PSNR | max abs diff |", "|---|---|---|---|"]
    for r in rows:
        cell = (f"{format_db(r['psnr_vs_one_tile_db'])} dB" if "psnr_vs_one_tile_db" in r
                else "—")
        lines.append(f"| {r['run']} | {r['median_s']:.2f} s | {cell} | "
                     f"{r.get('max_abs_diff', '—')} |")
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
