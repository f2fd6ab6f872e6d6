#!/usr/bin/python3
"""Cross-check tools/diffusion against the real diffusers source (not shipped
with kiln; PyPI is unreachable here, so the source is unpacked from git and its
hub/safetensors dependencies are stubbed: only the nn.Module and scheduler code
is exercised).

  # a diffusers checkout at tag v0.21.0 (the last one that imports under torch 1.13)
  git -C DIFFUSERS_GIT archive v0.21.0 src/diffusers | tar -x -C /tmp/dv && \
      mv /tmp/dv/src/diffusers /tmp/dv/diffusers
  /usr/bin/python3 tools/diffusion/verify_with_diffusers.py /tmp/dv [MODEL_DIR]

Checks: state-dict keys/shapes and forward outputs of our UNet vs diffusers'
UNet2DConditionModel (fashion, tiny SD, tiny fashion, linear proj_in/out);
our LDM names round-trip through diffusers' convert_ldm_unet_checkpoint; our
DDIM/Euler vs DDIMScheduler/EulerDiscreteScheduler; and, with MODEL_DIR, the
golden tensors in tests/data/diffusion/ against diffusers run on that model.
Patches the unpacked copy in place (dependency check, loaders import).
"""

import ast
import glob
import inspect
import json
import os
import re
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

STUB = '''
class _Any:
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return _Any()
    def __getattr__(self, n): return _Any()
    def __mro_entries__(self, b): return (object,)
    def __iter__(self): return iter(())
    def __bool__(self): return False
def __getattr__(n):
    if n.startswith("__"): raise AttributeError(n)
    return _Any()
__version__ = "99.0.0"
HF_HOME = hf_cache_home = "/tmp/hf-stub-home"
HUGGINGFACE_HUB_CACHE = "/tmp/hf-stub-home/hub"
HUGGINGFACE_CO_RESOLVE_ENDPOINT = "http://localhost"
'''


def prepare(root):
    stubs = os.path.join(root, "_stubs")
    for mod in ["huggingface_hub", "huggingface_hub.utils", "huggingface_hub.constants", "huggingface_hub.errors",
                "huggingface_hub.file_download", "huggingface_hub.utils._runtime", "safetensors",
                "safetensors.torch", "filelock", "regex"]:
        d = os.path.join(stubs, *mod.split("."))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "__init__.py"), "w") as f:
            f.write(STUB)
    pkg = os.path.join(root, "diffusers")
    with open(os.path.join(pkg, "dependency_versions_check.py"), "w") as f:
        f.write("def dep_version_check(pkg, hint=None):\n    pass\n")
    dummies = "".join(f"class {n}: pass\n" for n in [
        "UNet2DConditionLoadersMixin", "FromOriginalControlnetMixin", "FromOriginalVAEMixin",
        "PatchedLoraProjection", "text_encoder_attn_modules", "text_encoder_mlp_modules"])
    for p in glob.glob(os.path.join(pkg, "models", "*.py")):
        s = open(p).read()
        s2 = re.sub(r"^from \.\.loaders import .*$", dummies.rstrip("\n"), s, flags=re.M)
        if s2 != s:
            open(p, "w").write(s2)
    init = os.path.join(pkg, "__init__.py")
    s = open(init).read()
    open(init, "w").write(re.sub(r"^from \.loaders import", "# from .loaders import", s, flags=re.M))
    sys.path[:0] = [root, stubs]


def main():
    root = sys.argv[1]
    model_dir = sys.argv[2] if len(sys.argv) > 2 else None
    prepare(root)
    torch.set_num_threads(1)
    from diffusers.models.unet_2d_condition import UNet2DConditionModel as D
    from diffusers.schedulers.scheduling_ddim import DDIMScheduler
    from diffusers.schedulers.scheduling_euler_discrete import EulerDiscreteScheduler
    from diffusion import sched, st, unet

    src = open(os.path.join(root, "diffusers/pipelines/stable_diffusion/convert_from_ckpt.py")).read()
    want = {"shave_segments", "renew_resnet_paths", "renew_attention_paths", "assign_to_checkpoint",
            "conv_attn_to_linear", "convert_ldm_unet_checkpoint"}
    tree = ast.parse(src)
    ns = {"torch": torch, "logger": None}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in want]
    exec(compile(ast.Module(body=body, type_ignores=[]), "convert_from_ckpt", "exec"), ns)
    ldm_to_diffusers = ns["convert_ldm_unet_checkpoint"]
    known = inspect.signature(D.__init__).parameters

    def make(cfg):
        return D(**{k: v for k, v in cfg.items() if k in known}).eval()

    ok = True
    for name, cfg in [("fashion", unet.FASHION_CONFIG), ("tiny_sd", unet.TINY_SD_CONFIG),
                      ("tiny_fashion", unet.TINY_FASHION_CONFIG),
                      ("tiny_sd_linear_proj", dict(unet.TINY_SD_CONFIG, use_linear_projection=True))]:
        d, m = make(cfg), unet.UNet2DConditionModel(cfg).eval()
        sd_d, sd_m = d.state_dict(), m.state_dict()
        same = set(sd_d) == set(sd_m) and all(sd_d[k].shape == sd_m[k].shape for k in sd_m)
        torch.manual_seed(1)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.05 * torch.randn_like(p))
        d.load_state_dict(m.state_dict())
        hw = cfg["sample_size"]
        x = torch.randn(2, cfg["in_channels"], hw, hw)
        t = torch.tensor([10.0, 900.0])
        c = torch.randn(2, 4, cfg["cross_attention_dim"])
        with torch.no_grad():
            diff = (m(x, t, c) - d(x, t, c).sample).abs().max().item()
        ldm = {unet.diffusers_key_to_ldm(k, cfg): v for k, v in sd_m.items()}
        back = ldm_to_diffusers(dict(ldm), dict(cfg))
        rt = set(back) == set(sd_m) and all(torch.equal(back[k], sd_m[k]) for k in sd_m)
        print(f"{name}: {len(sd_m)} keys, same keys+shapes {same}, forward max abs diff {diff:.2e}, "
              f"LDM names round-trip {rt}")
        ok &= same and diff < 1e-5 and rt

    # Schedulers with a toy eps function.
    torch.manual_seed(0)
    w = torch.randn(1, 1, 32, 32)

    def toy(x, t, ctx):
        return torch.tanh(0.7 * x + w * (t[:, None, None, None] / 1000) + ctx.mean(dim=(1, 2))[:, None, None, None])

    noise, cond, unc = torch.randn(2, 1, 32, 32), torch.randn(2, 4, 8), torch.zeros(2, 4, 8)

    def run_diffusers(model, steps, g):
        def eps(x, t):
            e = model(torch.cat([x, x]), torch.full((4,), float(t)), torch.cat([unc, cond]))
            eu, ec = e.chunk(2)
            return eu + g * (ec - eu)
        kw = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=2e-2, beta_schedule="linear",
                  steps_offset=1, timestep_spacing="leading")
        s = DDIMScheduler(**kw, clip_sample=False, set_alpha_to_one=False)
        s.set_timesteps(steps)
        x = noise.clone()
        dd = [x]
        for t in s.timesteps:
            x = s.step(eps(x, t), t, x, eta=0.0).prev_sample
            dd.append(x)
        s = EulerDiscreteScheduler(**kw)
        s.set_timesteps(steps)
        x = noise * s.init_noise_sigma
        ee = [x]
        for t in s.timesteps:
            x = s.step(eps(s.scale_model_input(x, t), t), t, x).prev_sample
            ee.append(x)
        return torch.stack(dd), torch.stack(ee)

    with torch.no_grad():
        dd, ee = run_diffusers(toy, 20, 3.0)
        t1, t2 = [], []
        sched.ddim(toy, noise, cond, unc, 20, 3.0, 1, t1)
        sched.euler(toy, noise, cond, unc, 20, 3.0, 1, t2)
    e1 = (torch.stack(t1) - dd).abs().max().item()
    e2 = (torch.stack(t2) - ee).abs().max().item()
    print(f"samplers vs diffusers (toy eps, 20 steps, CFG 3): DDIM max abs {e1:.2e}, Euler max abs {e2:.2e}")
    ok &= e1 < 1e-5 and e2 < 1e-4

    if model_dir:
        g = os.path.join(REPO, "tests/data/diffusion")

        def npy(n):
            return torch.from_numpy(np.load(os.path.join(g, n)))

        def rel(a, b):
            return ((a - b).abs().max() / b.abs().max()).item()
        cfg = {k: v for k, v in json.load(open(os.path.join(model_dir, "config.json"))).items() if k[0] != "_"}
        d = make(cfg)
        d.load_state_dict(st.load(os.path.join(model_dir, "diffusion_pytorch_model.safetensors"), torch.float32)[0])
        tab = st.load(os.path.join(model_dir, "class_embeddings.safetensors"))[0]["class_embeddings"]
        with torch.no_grad():
            y = d(npy("unet_in_sample.npy"), npy("unet_in_timesteps.npy"),
                  npy("unet_in_encoder_hidden_states.npy")).sample
        r0 = rel(y, npy("unet_out.npy"))
        man = json.load(open(os.path.join(g, "manifest.json")))
        noise = npy("sampler_noise.npy")
        cond = tab[man["ddim"]["classes"]]
        unc = tab[10].expand(2, -1, -1)
        with torch.no_grad():
            dd, ee = run_diffusers(lambda x, t, c: d(x, t, c).sample, man["ddim"]["steps"], man["ddim"]["guidance"])
        e1 = (dd - npy("ddim_trajectory.npy")).abs().max().item()
        e2 = (ee - npy("euler_trajectory.npy")).abs().max().item()
        print(f"goldens vs diffusers on {model_dir}: UNet max rel {r0:.2e}, DDIM traj max abs {e1:.2e}, "
              f"Euler traj max abs {e2:.2e}")
        ok &= r0 < 1e-5 and e1 < 1e-4 and e2 < 1e-4
        for name in [t["dir"] for t in man["tiny"]]:
            cfg = {k: v for k, v in json.load(open(os.path.join(g, name, "config.json"))).items() if k[0] != "_"}
            d = make(cfg)
            args = [npy(f"{name}/in_{n}.npy") for n in ("sample", "timesteps", "encoder_hidden_states")]
            d.load_state_dict(st.load(os.path.join(g, name, "diffusers.safetensors"))[0])
            with torch.no_grad():
                y1 = d(*args).sample
            d.load_state_dict(ldm_to_diffusers(st.load(os.path.join(g, name, "ldm.safetensors"))[0], cfg))
            with torch.no_grad():
                y2 = d(*args).sample
            r1, r2 = rel(y1, npy(f"{name}/out.npy")), rel(y2, npy(f"{name}/out.npy"))
            print(f"{name}: diffusers naming max rel {r1:.2e}, LDM naming (diffusers' converter) max rel {r2:.2e}")
            ok &= r1 < 1e-5 and r2 < 1e-5
    print("ALL OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
