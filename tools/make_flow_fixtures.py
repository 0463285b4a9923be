#!/usr/bin/env python3
"""Writes the dopri5 parity fixtures (tests/fixtures/flow_dopri5*.safetensors): a fixed starting latent in, the final
latent out, for the DiT fixture dit_p2_hd64 used as a SiT (a velocity model, t in [0, 1] straight into the timestep
embedding), through an independent reference:
  - the network: diffusers' DiTTransformer2DModel configured to the official semantics (float64, the fixture's
    weights), as tools/make_sampler_fixtures.py loads it; its learned-sigma channels dropped, as SiT's forward does;
  - guidance: SiT's forward_with_cfg (the state's first half run twice with labels [y; null], channels 0..2 or all
    guided, the rest each half's own), written out below;
  - the solver: torchdiffeq's odeint(method="dopri5", atol=1e-6, rtol=1e-3) over linspace(0, 1, 50), as SiT's
    sample.py runs its default ODE sampler on the doubled batch [z; z].
Also `flow_dopri5_controller.safetensors`: the solver alone on y' = -k (1 + sin(20 t)) y + cos(3 t) (k from 0.5 to
40 per value, so steps are rejected and resized), for a test of the step control that needs no GPU.
Each network fixture holds `noise` [1, N, 4, 8, 8], `labels` [N], `out` [N, 4, 8, 8] and a JSON description (with the number
of drift evaluations torchdiffeq made) in its metadata.
Needs: torch, torchdiffeq, diffusers, safetensors, numpy.
Usage: python tools/make_flow_fixtures.py [--out tests/fixtures]
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file
from torchdiffeq import odeint

from make_sampler_fixtures import load_model


def run_dopri5(model, z, y, null, scale, channels):
    n = z.shape[0]
    calls = [0]

    def drift(t, x):
        calls[0] += 1
        half = x[:n]
        xin = torch.cat([half, half])
        tin = torch.full((2 * n,), float(t), dtype=torch.float64)
        yin = torch.cat([y, torch.full_like(y, null)])
        with torch.no_grad():
            out = model(xin, timestep=tin, class_labels=yin).sample[:, :4]
        guided, rest = out[:, :channels], out[:, channels:]
        cond, uncond = guided[:n], guided[n:]
        half_guided = uncond + scale * (cond - uncond)
        return torch.cat([torch.cat([half_guided, half_guided]), rest], dim=1)

    grid = torch.linspace(0.0, 1.0, 50, dtype=torch.float64)
    samples = odeint(drift, torch.cat([z, z]), grid, method="dopri5", atol=[1e-6], rtol=[1e-3])
    return samples[-1][:n], calls[0]


def controller_case(gen):
    y0 = torch.randn(64, generator=gen, dtype=torch.float64)
    k = torch.linspace(0.5, 40.0, 64, dtype=torch.float64)
    calls = [0]

    def drift(t, y):
        calls[0] += 1
        return -k * (1 + torch.sin(20 * t)) * y + torch.cos(3 * t)

    grid = torch.linspace(0.0, 1.0, 50, dtype=torch.float64)
    out = odeint(drift, y0, grid, method="dopri5", atol=[1e-6], rtol=[1e-3])[-1]
    return y0, out, calls[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    args = ap.parse_args()
    model = load_model(os.path.join(args.out, "dit_p2_hd64.safetensors"), heads=2, latent=8, classes=1000)
    y = torch.tensor([3, 417])
    gen = torch.Generator().manual_seed(11)
    for name, scale, channels in [("dopri5", 4.0, 3), ("dopri5_all", 1.5, 4)]:
        z = torch.randn(1, 2, 4, 8, 8, generator=gen, dtype=torch.float64)
        out, calls = run_dopri5(model, z[0], y, 1000, scale, channels)
        meta = {"sampler": "dopri5", "cfg": str(scale), "cfg_channels": "official" if channels == 3 else "all",
                "evaluations": calls}
        save_file(
            {"noise": z.float().contiguous(), "labels": y.to(torch.int32), "out": out.float().contiguous()},
            os.path.join(args.out, f"flow_{name}.safetensors"),
            metadata={"case": json.dumps(meta)},
        )
        print(f"flow_{name}: {meta}, max|out| {out.abs().max().item():.3f}, moved {(out - z[0]).abs().max().item():.3f}")

    y0, out, calls = controller_case(gen)
    save_file({"y0": y0.contiguous(), "out": out.contiguous()}, os.path.join(args.out, "flow_dopri5_controller.safetensors"),
              metadata={"case": json.dumps({"evaluations": calls})})
    print(f"flow_dopri5_controller: {calls} evaluations")


if __name__ == "__main__":
    main()
