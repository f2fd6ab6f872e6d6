"""Quality of `kiln generate` judged by the committed Fashion-MNIST classifier.

For each of the ten classes, `kiln generate` makes 10 images (DDIM, 30 steps, guidance 3,
seed = 1000 + class index); the classifier (tests/data/diffusion/classifier, 91% on the
Fashion-MNIST test set) labels them. Passes when at least 70% of the 100 images are labelled
as their own class; prints the accuracy per class.

usage: generate_quality.py KILN_BINARY MODELS_DIR OUT_DIR
"""

import json
import os
import subprocess
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from train_diffusion import classify, load_classifier  # noqa: E402

CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle boot"]
PER_CLASS = 10
THRESHOLD = 0.70


def main():
    kiln, models, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    classifier = load_classifier(os.path.join(ROOT, "tests", "data", "diffusion", "classifier"))
    per_class = {}
    correct = 0
    for k, name in enumerate(CLASSES):
        npy = os.path.join(out, f"class{k}.npy")
        png = os.path.join(out, f"class{k}.png")
        subprocess.run([kiln, "-q", "generate", "-m", "fashion-unet", "--models-dir", models,
                        "--prompt", name, "--steps", "30", "--sampler", "ddim",
                        "--guidance", "3", "--seed", str(1000 + k), "-n", str(PER_CLASS), "--threads", "1",
                        "--npy", npy, png], check=True)
        images = np.load(npy)  # [n, 32, 32, 1] in [-1, 1]
        assert images.shape == (PER_CLASS, 32, 32, 1), images.shape
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        labels = classify(classifier, x.clamp(-1, 1)).tolist()
        hits = sum(1 for label in labels if label == k)
        per_class[name] = hits / PER_CLASS
        correct += hits
        print(f"{name:12s} {hits}/{PER_CLASS}  labels {labels}", flush=True)
    overall = correct / (PER_CLASS * len(CLASSES))
    print(f"overall {overall:.0%} (threshold {THRESHOLD:.0%})")
    with open(os.path.join(out, "quality.json"), "w") as f:
        json.dump({"overall": overall, "per_class": per_class}, f, indent=2)
    sys.exit(0 if overall >= THRESHOLD else 1)


if __name__ == "__main__":
    main()
