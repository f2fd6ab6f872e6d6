#!/usr/bin/python3
"""Train kiln's class-conditional Fashion-MNIST diffusion UNet (diffusers
UNet2DConditionModel layout), its judge classifier, and write parity goldens.

Runs only under Debian's Python (/usr/bin/python3: python3-torch, python3-numpy,
python3-pil, libopenblas0-openmp) with Debian's dataset-fashion-mnist.

  train       train (or --resume) the UNet; checkpoints + usable exports every
              --checkpoint-minutes, stops after --minutes (or --steps)
  classifier  train the small CNN used to judge samples (>= 90% test accuracy)
  golden      golden tensors for kiln's parity tests (tests/data/diffusion/)
  sample      a PNG grid, 10 classes x N, with DDIM + CFG; classifier accuracy

Images: Fashion-MNIST 28x28 zero-padded to 32x32 (2 px each side), then mapped
to [-1, 1] (x / 127.5 - 1), so the padding is -1. The UNet and the classifier
both take 1x32x32 images in [-1, 1].

The class "prompt": a learned table [11, 4, 64]; row c (0..9) is the class,
row 10 the empty prompt (used for 10% of training images and as the
unconditional branch of classifier-free guidance). The UNet's
encoder_hidden_states for class c is table[c] ([4, 64]).
"""

import argparse
import copy
import gzip
import hashlib
import json
import math
import os
import signal
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from diffusion import sched, st, unet  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle boot"]
NUM_TOKENS = 4
EMPTY = 10
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- data

def _idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion(split):
    p = "train" if split == "train" else "t10k"
    path = os.path.join(DATA_DIR, f"{p}-images-idx3-ubyte.gz")
    if not os.path.exists(path):
        sys.exit(f"error: {path} missing; apt-get install dataset-fashion-mnist")
    x = _idx(path)
    y = _idx(os.path.join(DATA_DIR, f"{p}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.copy()).float().div(127.5).sub(1.0)
    x = F.pad(x[:, None], (2, 2, 2, 2), value=-1.0)
    return x.contiguous(), torch.from_numpy(y.astype(np.int64))


# ---------------------------------------------------------------- helpers

def set_threads(n):
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def diffusers_config_json(cfg):
    d = dict(cfg)
    d["_class_name"] = "UNet2DConditionModel"
    d["_diffusers_version"] = unet.DIFFUSERS_VERSION
    return d


def export_model(out, model_sd, table, cfg, extra_meta=None):
    """Writes diffusion_pytorch_model.safetensors (fp16), config.json,
    class_embeddings.safetensors (fp32 [11,4,64]) and scheduler_config.json."""
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, ".tmp.safetensors")
    st.save({k: v.to(torch.float16) for k, v in model_sd.items()}, tmp, {"format": "pt"})
    os.replace(tmp, os.path.join(out, "diffusion_pytorch_model.safetensors"))
    meta = {"format": "pt", "class_names": json.dumps(CLASS_NAMES + ["(empty)"]), "empty_index": str(EMPTY)}
    if extra_meta:
        meta.update(extra_meta)
    st.save({"class_embeddings": table.detach().float()}, tmp, meta)
    os.replace(tmp, os.path.join(out, "class_embeddings.safetensors"))
    write_json(os.path.join(out, "config.json"), diffusers_config_json(cfg))
    write_json(os.path.join(out, "scheduler_config.json"), sched.scheduler_config())


def load_model(model_dir):
    """Loads an exported model as fp32 (fp16 weights upcast: what kiln sees)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    m = unet.UNet2DConditionModel(cfg)
    sd, _ = st.load(os.path.join(model_dir, "diffusion_pytorch_model.safetensors"), torch.float32)
    m.load_state_dict(sd, strict=True)
    m.eval()
    tab, _ = st.load(os.path.join(model_dir, "class_embeddings.safetensors"), torch.float32)
    return m, tab["class_embeddings"], cfg


class Log:
    def __init__(self, path):
        self.f = open(path, "a")

    def __call__(self, msg):
        line = time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + msg
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


# ---------------------------------------------------------------- train

def cmd_train(a):
    set_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    log = Log(os.path.join(a.out, "train_log.txt"))
    cfg = dict(unet.FASHION_CONFIG)
    if a.channels:
        cfg["block_out_channels"] = [int(c) for c in a.channels.split(",")]
    ckpt_path = os.path.join(a.out, "checkpoint.pt")
    ck = None
    if a.resume:
        path = a.resume if a.resume != "auto" else ckpt_path
        ck = torch.load(path)
        if not a.channels:
            cfg = ck["config"]  # the checkpoint's own widths

    torch.manual_seed(a.seed)
    model = unet.UNet2DConditionModel(cfg)
    table = nn.Parameter(torch.randn(11, NUM_TOKENS, 64))
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.ndim >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay + [table], "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.999))
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    ema_table = table.detach().clone()
    gen = torch.Generator().manual_seed(a.seed + 1)
    step, images, elapsed_before = 0, 0, 0.0

    if ck is not None:
        if ck["config"] != cfg:
            sys.exit("error: checkpoint config differs from the requested one")
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        with torch.no_grad():
            table.copy_(ck["table"])
        ema_table = ck["ema_table"].clone()
        opt.load_state_dict(ck["opt"])
        torch.set_rng_state(ck["rng"])
        gen.set_state(ck["gen"])
        step, images, elapsed_before = ck["step"], ck["images"], ck["elapsed"]
        log(f"resumed from {path} at step {step} ({images} images, {elapsed_before / 60:.1f} min trained)")

    x_all, y_all = load_fashion("train")
    n_train = x_all.shape[0]
    ac = sched.alphas_cumprod()
    nparams = sum(p.numel() for p in model.parameters())
    log(f"train: config block_out_channels={cfg['block_out_channels']} params={nparams} batch={a.batch} "
        f"lr={a.lr} ema={a.ema} threads={torch.get_num_threads()} seed={a.seed} minutes={a.minutes} "
        f"steps={a.steps} torch={torch.__version__}")

    def save(tag):
        ck = {"config": cfg, "model": model.state_dict(), "ema": ema.state_dict(), "table": table.detach().clone(),
              "ema_table": ema_table, "opt": opt.state_dict(), "rng": torch.get_rng_state(),
              "gen": gen.get_state(), "perm": perm, "pos": pos, "step": step, "images": images,
              "elapsed": elapsed_before + (time.time() - t_start), "args": vars(a)}
        torch.save(ck, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
        export_model(a.out, ema.state_dict(), ema_table, cfg,
                     {"step": str(step), "images": str(images)})
        log(f"{tag}: step {step}, EMA weights exported to {a.out} (checkpoint {ckpt_path})")

    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.append(signum))  # finish the step, save, exit

    t_start = time.time()
    last_ckpt = t_start
    last_log = t_start
    loss_avg = None
    if ck is not None and "perm" in ck:
        perm, pos = ck["perm"], ck["pos"]  # continue the same data order
    else:
        perm, pos = torch.randperm(n_train, generator=gen), 0
    window_imgs, window_t = 0, time.time()
    model.train()
    while True:
        now = time.time()
        if a.minutes and now - t_start >= a.minutes * 60:
            break
        if a.steps and step >= a.steps:
            break
        if stop:
            log(f"signal {stop[0]}: stopping")
            break
        if pos + a.batch > n_train:
            perm = torch.randperm(n_train, generator=gen)
            pos = 0
        idx = perm[pos:pos + a.batch]
        pos += a.batch
        x0 = x_all[idx]
        y = y_all[idx].clone()
        drop = torch.rand(a.batch, generator=gen) < a.p_uncond
        y[drop] = EMPTY
        t = torch.randint(0, sched.T, (a.batch,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        at = ac[t][:, None, None, None]
        xt = at.sqrt() * x0 + (1 - at).sqrt() * eps
        ctx = table[y]
        lr = a.lr * min(1.0, (step + 1) / a.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        pred = model(xt, t.float(), ctx)
        loss = F.mse_loss(pred, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()) + [table], a.clip)
        opt.step()
        step += 1
        images += a.batch
        window_imgs += a.batch
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
            ema_table.mul_(d).add_(table.detach(), alpha=1 - d)
        lv = loss.item()
        loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
        now = time.time()
        if now - last_log >= a.log_seconds:
            ips = window_imgs / (now - window_t)
            log(f"step {step} images {images} epoch {images / n_train:.2f} loss {lv:.4f} avg {loss_avg:.4f} "
                f"lr {lr:.2e} {ips:.1f} img/s elapsed {(elapsed_before + now - t_start) / 60:.1f} min")
            last_log, window_imgs, window_t = now, 0, now
        if a.checkpoint_minutes and now - last_ckpt >= a.checkpoint_minutes * 60:
            save("checkpoint")
            last_ckpt = time.time()
    total = time.time() - t_start
    log(f"done: {step} steps, {images} images in total; this run {total / 60:.1f} min")
    save("final")


# ---------------------------------------------------------------- classifier

class Classifier(nn.Module):
    """conv3x3(1->16) ReLU maxpool2 | conv3x3(16->32) ReLU maxpool2 | conv3x3(32->64)
    ReLU maxpool2 | flatten (NCHW order, 64*4*4) | fc(1024->128) ReLU | fc(128->10).
    Input 1x32x32 in [-1, 1]. Dropout (0.3 before fc1, training only)."""

    ARCH = [
        {"op": "conv2d", "name": "conv1", "in": 1, "out": 16, "kernel": 3, "stride": 1, "padding": 1},
        {"op": "relu"}, {"op": "maxpool2d", "kernel": 2, "stride": 2},
        {"op": "conv2d", "name": "conv2", "in": 16, "out": 32, "kernel": 3, "stride": 1, "padding": 1},
        {"op": "relu"}, {"op": "maxpool2d", "kernel": 2, "stride": 2},
        {"op": "conv2d", "name": "conv3", "in": 32, "out": 64, "kernel": 3, "stride": 1, "padding": 1},
        {"op": "relu"}, {"op": "maxpool2d", "kernel": 2, "stride": 2},
        {"op": "flatten", "order": "NCHW"},
        {"op": "linear", "name": "fc1", "in": 1024, "out": 128},
        {"op": "relu"},
        {"op": "linear", "name": "fc2", "in": 128, "out": 10},
    ]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(1024, 128)
        self.fc2 = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        x = self.drop(x.flatten(1))
        return self.fc2(F.relu(self.fc1(x)))


@torch.no_grad()
def classify(model, x, batch=500):
    model.eval()
    return torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, x.shape[0], batch)])


def load_classifier(d):
    m = Classifier()
    sd, _ = st.load(os.path.join(d, "classifier.safetensors"), torch.float32)
    m.load_state_dict(sd)
    return m.eval()


def cmd_classifier(a):
    set_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    log = Log(os.path.join(a.out, "classifier_log.txt"))
    xtr, ytr = load_fashion("train")
    xte, yte = load_fashion("test")
    m = Classifier()
    opt = torch.optim.Adam(m.parameters(), lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed + 1)
    t0 = time.time()
    epoch, step = 0, 0
    acc = 0.0
    while epoch < a.epochs and time.time() - t0 < a.minutes * 60:
        perm = torch.randperm(xtr.shape[0], generator=gen)
        m.train()
        for i in range(0, xtr.shape[0] - a.batch + 1, a.batch):
            idx = perm[i:i + a.batch]
            loss = F.cross_entropy(m(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if time.time() - t0 >= a.minutes * 60:
                break
        epoch += 1
        acc = (classify(m, xte) == yte).float().mean().item()
        log(f"epoch {epoch} steps {step} loss {loss.item():.4f} test accuracy {acc * 100:.2f}% "
            f"elapsed {(time.time() - t0) / 60:.1f} min")
        for g in opt.param_groups:
            g["lr"] *= a.lr_decay
    # The final model is kept (no selection on the test set).
    ep = epoch
    sd = m.state_dict()
    pred = classify(m, xte)
    per = {CLASS_NAMES[c]: round((pred[yte == c] == c).float().mean().item() * 100, 2) for c in range(10)}
    st.save(sd, os.path.join(a.out, "classifier.safetensors"), {"format": "pt"})
    write_json(os.path.join(a.out, "classifier.json"), {
        "architecture": Classifier.ARCH,
        "input": {"shape": [1, 32, 32], "range": [-1, 1],
                  "preprocess": "Fashion-MNIST 28x28 zero-padded 2 px per side to 32x32, x/127.5 - 1"},
        "classes": CLASS_NAMES,
        "test_accuracy": round(acc * 100, 2),
        "test_accuracy_per_class": per,
        "epochs": ep, "seed": a.seed, "train_minutes": round((time.time() - t0) / 60, 2),
    })
    log(f"saved {a.out}/classifier.safetensors: test accuracy {acc * 100:.2f}% (epoch {ep}); per class {per}")


# ---------------------------------------------------------------- sample

def cmd_sample(a):
    set_threads(a.threads)
    from PIL import Image
    m, tab, cfg = load_model(a.model)
    g = torch.Generator().manual_seed(a.seed)
    n = a.n
    labels = torch.arange(10).repeat_interleave(n)
    noise = torch.randn(10 * n, 1, 32, 32, generator=g)
    out = []
    t0 = time.time()
    for i in range(0, 10 * n, a.batch):
        lab = labels[i:i + a.batch]
        cond = tab[lab]
        uncond = tab[EMPTY].expand(lab.shape[0], -1, -1)
        if a.sampler == "ddim":
            x, _ = sched.ddim(m, noise[i:i + a.batch], cond, uncond, a.steps, a.guidance)
        else:
            x, _, _, _ = sched.euler(m, noise[i:i + a.batch], cond, uncond, a.steps, a.guidance)
        out.append(x)
    x = torch.cat(out).clamp(-1, 1)
    dt = time.time() - t0
    img = ((x + 1) * 127.5).round().byte()[:, 0].numpy()
    gap = 2
    s = 32
    grid = np.full((10 * (s + gap) + gap, n * (s + gap) + gap), 255, np.uint8)
    for k in range(10 * n):
        r, c = divmod(k, n)
        grid[gap + r * (s + gap):gap + r * (s + gap) + s, gap + c * (s + gap):gap + c * (s + gap) + s] = img[k]
    im = Image.fromarray(grid)
    if a.scale > 1:
        im = im.resize((im.width * a.scale, im.height * a.scale), Image.NEAREST)
    im.save(a.png)
    print(f"wrote {a.png}: 10 classes x {n}, {a.sampler} {a.steps} steps, guidance {a.guidance}, seed {a.seed}, "
          f"{dt:.1f} s")
    if a.classifier:
        clf = load_classifier(a.classifier)
        # Quantise like a saved image before judging.
        xq = torch.from_numpy(img).float()[:, None] / 127.5 - 1
        pred = classify(clf, xq)
        ok = pred == labels
        for c in range(10):
            sel = labels == c
            print(f"  {c} {CLASS_NAMES[c]:12s} {ok[sel].float().mean().item() * 100:5.1f}%  predicted "
                  f"{pred[sel].tolist()}")
        print(f"  overall {ok.float().mean().item() * 100:.1f}% classified as their own class")


# ---------------------------------------------------------------- golden

def _npy(path, t):
    np.save(path, np.ascontiguousarray(t.detach().float().numpy().astype(np.float32)))


def _tiny(cfg, seed, outdir, name, sample_hw, tokens):
    """A random state dict in diffusers and LDM naming + output for fixed inputs."""
    torch.manual_seed(seed)
    m = unet.UNet2DConditionModel(cfg).eval()
    # Random non-trivial norms/biases too, so a mis-mapped key cannot hide.
    with torch.no_grad():
        for k, p in m.named_parameters():
            if p.ndim == 1:
                p.copy_((1.0 if k.endswith("weight") and "norm" in k else 0.0) + 0.1 * torch.randn_like(p))
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    st.save(sd, os.path.join(d, "diffusers.safetensors"), {"format": "pt"})
    ldm = {unet.diffusers_key_to_ldm(k, cfg): v for k, v in sd.items()}
    assert len(ldm) == len(sd)
    st.save(ldm, os.path.join(d, "ldm.safetensors"), {"format": "pt"})
    write_json(os.path.join(d, "config.json"), diffusers_config_json(cfg))
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(2, cfg["in_channels"], sample_hw, sample_hw, generator=g)
    ts = torch.tensor([37.0, 801.0])
    ctx = torch.randn(2, tokens, cfg["cross_attention_dim"], generator=g)
    with torch.no_grad():
        y = m(x, ts, ctx)
    _npy(os.path.join(d, "in_sample.npy"), x)
    _npy(os.path.join(d, "in_timesteps.npy"), ts)
    _npy(os.path.join(d, "in_encoder_hidden_states.npy"), ctx)
    _npy(os.path.join(d, "out.npy"), y)
    write_json(os.path.join(d, "key_map.json"), {k: unet.diffusers_key_to_ldm(k, cfg) for k in sd})
    return {"dir": name, "seed": seed, "params": sum(v.numel() for v in sd.values()), "keys": len(sd),
            "weights_dtype": "float32",
            "files": {"diffusers": "diffusers.safetensors", "ldm": "ldm.safetensors (model.diffusion_model.*)",
                      "config": "config.json", "key_map": "key_map.json (diffusers -> LDM)"},
            "inputs": {"sample": [2, cfg["in_channels"], sample_hw, sample_hw], "timesteps": ts.tolist(),
                       "encoder_hidden_states": [2, tokens, cfg["cross_attention_dim"]]}}


def cmd_golden(a):
    set_threads(a.threads)
    out = a.out
    os.makedirs(out, exist_ok=True)
    if a.init_seed is not None:
        torch.manual_seed(a.init_seed)
        m0 = unet.UNet2DConditionModel(unet.FASHION_CONFIG)
        export_model(a.model, m0.state_dict(), torch.randn(11, NUM_TOKENS, 64), unet.FASHION_CONFIG,
                     {"note": f"freshly initialised, seed {a.init_seed}"})
    m, tab, cfg = load_model(a.model)
    mpath = os.path.join(a.model, "diffusion_pytorch_model.safetensors")
    tpath = os.path.join(a.model, "class_embeddings.safetensors")
    man = {
        "description": "Golden tensors for kiln's diffusion parity tests, written by tools/train_diffusion.py golden. "
                       "All .npy are float32, C order. The UNet runs in fp32 on the fp16 weights upcast.",
        "model": {"weights": "diffusion_pytorch_model.safetensors (fp16)", "weights_sha256": sha256(mpath),
                  "class_embeddings": "class_embeddings.safetensors (fp32 [11,4,64], row 10 = empty prompt)",
                  "class_embeddings_sha256": sha256(tpath), "config": diffusers_config_json(cfg)},
        "layout": "NCHW; encoder_hidden_states [batch, tokens, dim]; trajectories [steps+1, batch, C, H, W] "
                  "with index 0 the initial latent (after the sampler's initial noise scaling)",
        "torch": torch.__version__,
    }
    g = torch.Generator().manual_seed(a.seed)
    # UNet output for fixed inputs.
    x = torch.randn(2, 1, 32, 32, generator=g)
    ts = torch.tensor([999.0, 41.0])
    labels = [3, EMPTY]
    ctx = tab[labels]
    with torch.no_grad():
        y = m(x, ts, ctx)
    _npy(os.path.join(out, "unet_in_sample.npy"), x)
    _npy(os.path.join(out, "unet_in_timesteps.npy"), ts)
    _npy(os.path.join(out, "unet_in_encoder_hidden_states.npy"), ctx)
    _npy(os.path.join(out, "unet_out.npy"), y)
    man["unet"] = {"sample": "unet_in_sample.npy [2,1,32,32]", "timesteps": ts.tolist(),
                   "timesteps_file": "unet_in_timesteps.npy", "encoder_hidden_states":
                   "unet_in_encoder_hidden_states.npy [2,4,64] = class_embeddings[[3, 10]]",
                   "output": "unet_out.npy [2,1,32,32]", "tolerance_max_rel": 1e-4}
    # Sampler trajectories, CFG.
    noise = torch.randn(2, 1, 32, 32, generator=g)
    classes = [9, 1]
    cond = tab[classes]
    uncond = tab[EMPTY].expand(2, -1, -1)
    _npy(os.path.join(out, "sampler_noise.npy"), noise)
    _npy(os.path.join(out, "alphas_cumprod.npy"), sched.alphas_cumprod())
    traj = []
    _, dts = sched.ddim(m, noise, cond, uncond, a.steps, a.guidance, 1, traj)
    _npy(os.path.join(out, "ddim_trajectory.npy"), torch.stack(traj))
    traj = []
    _, ets, sig, init = sched.euler(m, noise, cond, uncond, a.steps, a.guidance, 1, traj)
    _npy(os.path.join(out, "euler_trajectory.npy"), torch.stack(traj))
    common = {"noise": "sampler_noise.npy [2,1,32,32]", "classes": classes,
              "cond": "class_embeddings[classes]", "uncond": "class_embeddings[10] for every batch element",
              "guidance": a.guidance, "cfg": "one UNet batch [uncond; cond], eps = eps_u + g * (eps_c - eps_u)",
              "steps": a.steps, "num_train_timesteps": sched.T, "beta_schedule": "linear",
              "beta_start": sched.BETA_START, "beta_end": sched.BETA_END,
              "alphas_cumprod": "alphas_cumprod.npy (float32 cumprod of 1 - linspace(beta_start, beta_end, 1000))",
              "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1,
              "tolerance_max_abs_after_20_steps": 1e-3}
    man["ddim"] = dict(common, trajectory="ddim_trajectory.npy [21,2,1,32,32]", eta=0.0, set_alpha_to_one=False,
                       clip_sample=False, timesteps=[int(t) for t in dts], initial_noise_scale=1.0)
    man["euler"] = dict(common, trajectory="euler_trajectory.npy [21,2,1,32,32]", s_churn=0.0,
                        interpolation_type="linear", final_sigma=0.0, timesteps=[float(t) for t in ets],
                        sigmas=[float(s) for s in sig], initial_noise_scale=init,
                        model_input="x / sqrt(sigma^2 + 1), timestep t",
                        update="x0 = x - sigma * eps; x + (x - x0) / sigma * (sigma_next - sigma) (diffusers' float32 order)")
    # Tiny state dicts for the loader's key mapping.
    man["tiny"] = [
        _tiny(unet.TINY_SD_CONFIG, a.seed + 7, out, "tiny_sd", 16, 3),
        _tiny(unet.TINY_FASHION_CONFIG, a.seed + 8, out, "tiny_fashion", 32, 4),
    ]
    write_json(os.path.join(out, "manifest.json"), man)
    total = 0
    for root, _, files in os.walk(out):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"wrote goldens to {out} ({total / 1024:.0f} KiB); model sha256 {man['model']['weights_sha256'][:16]}")


# ---------------------------------------------------------------- keys

def cmd_keys(a):
    cfg = dict(unet.FASHION_CONFIG)
    m = unet.UNet2DConditionModel(cfg)
    sd = m.state_dict()
    for k, v in sd.items():
        print(k, list(v.shape), unet.diffusers_key_to_ldm(k, cfg) if a.ldm else "")
    print(f"{len(sd)} keys, {sum(v.numel() for v in sd.values())} parameters")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", default="build/diffusion/fashion-unet")
    t.add_argument("--minutes", type=float, default=150.0, help="wall-clock budget of this run (0: none)")
    t.add_argument("--steps", type=int, default=0, help="stop after this many optimizer steps in total (0: none)")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--clip", type=float, default=1.0)
    t.add_argument("--ema", type=float, default=0.999)
    t.add_argument("--p-uncond", type=float, default=0.1)
    t.add_argument("--channels", default="", help="block_out_channels, e.g. 32,32,48 (default 32,32,64)")
    t.add_argument("--checkpoint-minutes", type=float, default=10.0)
    t.add_argument("--log-seconds", type=float, default=30.0)
    t.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from OUT/checkpoint.pt (or the given path)")
    c = sub.add_parser("classifier")
    c.add_argument("--out", default="build/diffusion/classifier")
    c.add_argument("--minutes", type=float, default=3.0)
    c.add_argument("--epochs", type=int, default=8)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--batch", type=int, default=128)
    c.add_argument("--lr", type=float, default=2e-3)
    c.add_argument("--lr-decay", type=float, default=0.7)
    s = sub.add_parser("sample")
    s.add_argument("--model", default="build/diffusion/fashion-unet")
    s.add_argument("--classifier", default="build/diffusion/classifier")
    s.add_argument("--png", default="build/diffusion/samples.png")
    s.add_argument("-n", type=int, default=10, help="samples per class")
    s.add_argument("--steps", type=int, default=30)
    s.add_argument("--sampler", choices=["ddim", "euler"], default="ddim")
    s.add_argument("--guidance", type=float, default=3.0)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--batch", type=int, default=50)
    s.add_argument("--scale", type=int, default=2)
    s.add_argument("--threads", type=int, default=1)
    g = sub.add_parser("golden")
    g.add_argument("--model", default="build/diffusion/fashion-unet")
    g.add_argument("--init-seed", type=int, default=None,
                   help="first write a freshly initialised model (this seed) to --model")
    g.add_argument("--out", default=os.path.join(REPO, "tests/data/diffusion"))
    g.add_argument("--seed", type=int, default=1234)
    g.add_argument("--steps", type=int, default=20)
    g.add_argument("--guidance", type=float, default=3.0)
    g.add_argument("--threads", type=int, default=1)
    k = sub.add_parser("keys", help="print the state-dict keys and shapes")
    k.add_argument("--ldm", action="store_true", help="also the LDM names")
    a = p.parse_args()
    {"train": cmd_train, "classifier": cmd_classifier, "sample": cmd_sample, "golden": cmd_golden,
     "keys": cmd_keys}[a.cmd](a)


if __name__ == "__main__":
    main()
