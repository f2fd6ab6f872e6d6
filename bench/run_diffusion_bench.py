"""kiln vs PyTorch on the trained diffusion UNet (tests/data/diffusion/fashion-unet): time per
UNet evaluation and per guided 30-step image, batch 1 and 16, 1 and 2 threads. Each engine
runs in its own process, alternating, and the ratio is PyTorch's time over kiln's.

usage: /usr/bin/python3 bench/run_diffusion_bench.py [--runs N] [--out DIR]
Writes results/<date>-<cpu>-diffusion.json and .md and prints the table.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "tests", "data", "diffusion", "fashion-unet")


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "kiln_diffusion_bench"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    a = ap.parse_args()
    rows = []
    for batch in (1, 16):
        for threads in (1, 2):
            args = [MODEL, "--batch", str(batch), "--threads", str(threads), "--runs", str(a.runs)]
            kiln = run([a.bench] + args)
            torch = run(["/usr/bin/python3", os.path.join(ROOT, "bench", "peers", "torch_unet_peer.py")] + args)
            rows.append({"batch": batch, "threads": threads, "kiln": kiln, "torch": torch,
                         "eval_ratio": torch["eval_median_s"] / kiln["eval_median_s"],
                         "image_ratio": torch["image_s"] / kiln["image_s"]})
            print(json.dumps(rows[-1]), file=sys.stderr)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    lines = [
        "| batch | threads | kiln ms/eval | PyTorch ms/eval | ratio | kiln ms/image (30 steps, CFG) | PyTorch ms/image | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        k, t = r["kiln"], r["torch"]
        lines.append(
            f"| {r['batch']} | {r['threads']} | {k['eval_median_s'] * 1e3:.2f} | "
            f"{t['eval_median_s'] * 1e3:.2f} | {r['eval_ratio']:.2f}x | {k['image_s'] * 1e3:.1f} | "
            f"{t['image_s'] * 1e3:.1f} | {r['image_ratio']:.2f}x |")
    table = "\n".join(lines)
    print(table)
    date = datetime.date.today().isoformat()
    cpu = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")[:40]
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, f"{date}-{cpu}-diffusion")
    meta = {"date": date, "cpu": cpu_model(), "cores": os.cpu_count(), "kiln_commit": commit,
            "load_average": load, "model": "tests/data/diffusion/fashion-unet", "rows": rows}
    with open(base + ".json", "w") as f:
        json.dump(meta, f, indent=2)
    with open(base + ".md", "w") as f:
        f.write(f"# Diffusion UNet: kiln vs PyTorch ({date})\n\n{cpu_model()}, {os.cpu_count()} cores, "
                f"load average {load[0]:.2f} at the end, kiln {commit}.\n"
                f"Command: `/usr/bin/python3 bench/run_diffusion_bench.py --runs {a.runs}`.\n\n"
                f"{table}\n")
    print(f"wrote {base}.json and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
