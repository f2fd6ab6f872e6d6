"""PyTorch peer of kiln_diffusion_bench: the same trained UNet (tools/diffusion/unet.py, the
diffusers layout, fp16 weights upcast to fp32), one evaluation at a batch size and whole
30-step DDIM images with guidance 3. Prints one JSON line with the same fields.

usage: torch_unet_peer.py MODEL_DIR --batch B --threads T [--runs N] [--steps S]
"""

import argparse
import json
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from diffusion import sched  # noqa: E402
from train_diffusion import load_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    unet, table, cfg = load_model(a.model_dir)
    side = cfg["sample_size"]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(a.batch, cfg["in_channels"], side, side, generator=g)
    ctx = table[8:9].expand(a.batch, -1, -1).contiguous()
    t = torch.full((a.batch,), 500.0)
    evals = []
    with torch.no_grad():
        unet(x, t, ctx)
        for _ in range(a.runs):
            t0 = time.perf_counter()
            unet(x, t, ctx)
            evals.append(time.perf_counter() - t0)
        uncond = table[10:11].expand(a.batch, -1, -1).contiguous()
        t0 = time.perf_counter()
        sched.ddim(unet, x, ctx, uncond, steps=a.steps, guidance=3.0)
        image = (time.perf_counter() - t0) / a.batch
    evals.sort()
    print(json.dumps({"engine": "torch", "batch": a.batch, "threads": a.threads, "runs": a.runs,
                      "eval_median_s": evals[len(evals) // 2], "eval_min_s": evals[0],
                      "steps": a.steps, "image_s": image, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
