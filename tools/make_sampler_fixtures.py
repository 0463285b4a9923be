#!/usr/bin/env python3
"""Writes sampler parity fixtures (tests/fixtures/sampler_*.safetensors): fixed noise in, final latent out, for the
DiT fixture dit_p2_hd64 (weights in the release's names) run through an independent reference:
  - the model: diffusers' DiTTransformer2DModel configured to the official semantics (float64, same fp16 weights);
  - guidance: the release's forward_with_cfg (channels 0..2, or all channels), written out below;
  - DDPM (learned-range variance) and DDIM (eta 0): the formulas of the release's gaussian_diffusion.py, in float64
    (as in dit-spec.md section 4);
  - DPM-Solver++(2M): diffusers' DPMSolverMultistepScheduler on the same timesteps (custom timesteps,
    final_sigmas_type="zero", lower_order_final).
Each fixture holds `noise` [K+1, N, 4, 8, 8] (index 0 the starting latent, index i+1 the noise of the i-th step run),
`labels` [N], `out` [N, 4, 8, 8] and a JSON description in its metadata.
Usage: python tools/make_sampler_fixtures.py [--out tests/fixtures]
"""
import argparse
import json
import math
import os

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler
from safetensors.torch import load_file, save_file

from dit_keys import diffusers_dit, official_to_diffusers


def load_model(path, heads, latent, classes):
    """The release-named weights -> diffusers' model with the official semantics."""
    w = {k: v.to(torch.float64) for k, v in load_file(path).items()}
    d, _, p, _ = w["x_embedder.proj.weight"].shape
    depth = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("blocks."))
    model = diffusers_dit(heads, d // heads, depth, latent, p, classes).to(torch.float64)
    missing, unexpected = model.load_state_dict(official_to_diffusers(w), strict=False)
    assert not unexpected and all("pos_embed.pos_embed" in m for m in missing), (missing, unexpected)
    return model.eval()


def respace(k):
    """The release's space_timesteps for one section of k steps, and the respaced betas (float64)."""
    n = 1000
    if k == 1:
        steps = [0]
    else:
        stride = (n - 1) / (k - 1)
        cur, steps = 0.0, []
        for _ in range(k):
            steps.append(round(cur))  # Python's round: half to even
            cur += stride
    betas = np.linspace(1e-4, 0.02, n, dtype=np.float64)
    abar = np.cumprod(1.0 - betas)
    new_betas, last = [], 1.0
    for t in steps:
        new_betas.append(1.0 - abar[t] / last)
        last = abar[t]
    return steps, np.array(new_betas)


def guided_output(model, x, t, y, null, scale, channels):
    """forward_with_cfg: model on [x; x] with labels [y; null], guidance on the first `channels` eps channels.
    Returns the conditional half's output with guided eps."""
    n = x.shape[0]
    xin = torch.cat([x, x])
    tin = torch.full((2 * n,), float(t), dtype=torch.float64)
    yin = torch.cat([y, torch.full_like(y, null)])
    with torch.no_grad():
        out = model(xin, timestep=tin, class_labels=yin).sample
    cond, uncond = out[:n], out[n:]
    res = cond.clone()
    res[:, :channels] = uncond[:, :channels] + scale * (cond[:, :channels] - uncond[:, :channels])
    return res


def run_ddpm_ddim(model, kind, k, noise, y, null, scale, channels):
    steps, b = respace(k)
    a = np.cumprod(1.0 - b)
    ap = np.append(1.0, a[:-1])
    post_var = b * (1.0 - ap) / (1.0 - a)
    post_log = np.log(np.append(post_var[1], post_var[1:])) if k > 1 else np.log(np.array([1e-20]))
    x = noise[0].clone()
    for i, kk in enumerate(reversed(range(k))):
        out = guided_output(model, x, steps[kk], y, null, scale, channels)
        eps, v = out[:, :4], out[:, 4:]
        x0 = math.sqrt(1.0 / a[kk]) * x - math.sqrt(1.0 / a[kk] - 1.0) * eps
        if kind == "ddpm":
            mean = (b[kk] * math.sqrt(ap[kk]) / (1.0 - a[kk])) * x0 + ((1.0 - ap[kk]) * math.sqrt(1.0 - b[kk]) / (1.0 - a[kk])) * x
            frac = (v + 1.0) / 2.0
            logvar = frac * math.log(b[kk]) + (1.0 - frac) * post_log[kk]
            x = mean + (1.0 if kk != 0 else 0.0) * torch.exp(0.5 * logvar) * noise[i + 1]
        else:
            eps2 = (math.sqrt(1.0 / a[kk]) * x - x0) / math.sqrt(1.0 / a[kk] - 1.0)
            x = x0 * math.sqrt(ap[kk]) + math.sqrt(1.0 - ap[kk]) * eps2
    return x


def run_dpm(model, k, noise, y, null, scale, channels):
    steps, _ = respace(k)
    sched = DPMSolverMultistepScheduler(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        solver_order=2,
        prediction_type="epsilon",
        algorithm_type="dpmsolver++",
        solver_type="midpoint",
        lower_order_final=True,
        final_sigmas_type="zero",
    )
    sched.set_timesteps(timesteps=list(reversed(steps)))
    x = noise[0].clone()
    for t in sched.timesteps:
        out = guided_output(model, x, int(t), y, null, scale, channels)
        x = sched.step(out[:, :4], t, x).prev_sample.to(torch.float64)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    args = ap.parse_args()
    model = load_model(os.path.join(args.out, "dit_p2_hd64.safetensors"), heads=2, latent=8, classes=1000)
    y = torch.tensor([1, 7])
    gen = torch.Generator().manual_seed(5)
    cases = [
        ("ddpm", "ddpm", 10, 4.0, 3),
        ("ddim_all", "ddim", 10, 3.0, 4),
        ("dpmpp2m", "dpmpp2m", 8, 4.0, 3),
    ]
    for name, kind, k, scale, channels in cases:
        noise = torch.randn(k + 1, 2, 4, 8, 8, generator=gen, dtype=torch.float64)
        if kind == "dpmpp2m":
            out = run_dpm(model, k, noise, y, 1000, scale, channels)
        else:
            out = run_ddpm_ddim(model, kind, k, noise, y, 1000, scale, channels)
        meta = {"sampler": kind, "steps": str(k), "cfg": str(scale), "cfg_channels": "official" if channels == 3 else "all"}
        save_file(
            {"noise": noise.float().contiguous(), "labels": y.to(torch.int32), "out": out.float().contiguous()},
            os.path.join(args.out, f"sampler_{name}.safetensors"),
            metadata={"case": json.dumps(meta)},
        )
        print(f"sampler_{name}: {meta}, max|out| {out.abs().max().item():.3f}")


if __name__ == "__main__":
    main()
