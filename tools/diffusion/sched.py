"""Noise schedule and samplers, following diffusers' conventions (re-written):

* betas "linear": torch.linspace(beta_start, beta_end, T, float32);
  alphas_cumprod = cumprod(1 - betas) in float32.
* DDIM (eta = 0), timestep_spacing "leading": step_ratio = T // n,
  timesteps = arange(n)[::-1] * step_ratio + steps_offset; the previous
  timestep is t - step_ratio, and alpha_prev = alphas_cumprod[0] when it is
  negative (set_alpha_to_one = False, as SD). x0 = (x - sqrt(1-a) eps) / sqrt(a),
  x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps. Initial noise scale 1.
* Euler (EulerDiscreteScheduler, s_churn 0), "leading" + steps_offset like DDIM:
  sigma(t) = sqrt((1 - a_t) / a_t), sigmas appended with 0; initial noise
  scaled by sqrt(sigma_max^2 + 1) ("leading" spacing); the model sees
  x / sqrt(sigma^2 + 1); x0 = x - sigma eps, d = (x - x0) / sigma,
  x_next = x + d * (sigma_next - sigma) (= x + eps (sigma_next - sigma) exactly in reals).
* Classifier-free guidance: one batch [uncond; cond] (diffusers' order),
  eps = eps_u + g * (eps_c - eps_u).
"""

import numpy as np
import torch

T = 1000
BETA_START = 1e-4
BETA_END = 2e-2


def alphas_cumprod():
    betas = torch.linspace(BETA_START, BETA_END, T, dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0)


def scheduler_config(steps_offset=1):
    """A diffusers DDIMScheduler-style scheduler_config.json for the trained model."""
    return {
        "_class_name": "DDIMScheduler",
        "beta_end": BETA_END,
        "beta_schedule": "linear",
        "beta_start": BETA_START,
        "clip_sample": False,
        "num_train_timesteps": T,
        "prediction_type": "epsilon",
        "set_alpha_to_one": False,
        "steps_offset": steps_offset,
        "timestep_spacing": "leading",
        "trained_betas": None,
    }


def leading_timesteps(n, steps_offset=1):
    ratio = T // n
    return (np.arange(0, n) * ratio).round()[::-1].astype(np.int64) + steps_offset


def cfg_eps(unet, x, t, cond, uncond, guidance):
    """cond/uncond: [B, tokens, dim]."""
    b = x.shape[0]
    if guidance == 1.0:
        return unet(x, torch.full((b,), float(t)), cond)
    xx = torch.cat([x, x])
    ctx = torch.cat([uncond, cond])
    e = unet(xx, torch.full((2 * b,), float(t)), ctx)
    eu, ec = e[:b], e[b:]
    return eu + guidance * (ec - eu)


@torch.no_grad()
def ddim(unet, noise, cond, uncond, steps=20, guidance=3.0, steps_offset=1, trajectory=None):
    ac = alphas_cumprod()
    ts = leading_timesteps(steps, steps_offset)
    ratio = T // steps
    x = noise.clone()
    if trajectory is not None:
        trajectory.append(x.clone())
    for t in ts:
        eps = cfg_eps(unet, x, t, cond, uncond, guidance)
        a = ac[t]
        prev = t - ratio
        ap = ac[prev] if prev >= 0 else ac[0]
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        x = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
        if trajectory is not None:
            trajectory.append(x.clone())
    return x, ts


def euler_sigmas(steps, steps_offset=1):
    ac = alphas_cumprod().numpy()
    ts = leading_timesteps(steps, steps_offset).astype(np.float32)
    sig = np.array(((1 - ac) / ac) ** 0.5)
    s = np.interp(ts, np.arange(0, len(sig)), sig)
    s = np.concatenate([s, [0.0]]).astype(np.float32)
    return ts, torch.from_numpy(s)


@torch.no_grad()
def euler(unet, noise, cond, uncond, steps=20, guidance=3.0, steps_offset=1, trajectory=None):
    ts, sig = euler_sigmas(steps, steps_offset)
    init = float((sig.max() ** 2 + 1) ** 0.5)
    x = noise * init
    if trajectory is not None:
        trajectory.append(x.clone())
    for i, t in enumerate(ts):
        s = sig[i]
        xin = x / ((s ** 2 + 1) ** 0.5)
        eps = cfg_eps(unet, xin, float(t), cond, uncond, guidance)
        # diffusers' arithmetic order (x0 round trip), to match it to float32 rounding
        x0 = x - s * eps
        d = (x - x0) / s
        x = x + d * (sig[i + 1] - s)
        if trajectory is not None:
            trajectory.append(x.clone())
    return x, ts, sig, init
