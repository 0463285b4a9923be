#!/usr/bin/env python3
"""Writes the flow-map parity fixtures (tests/fixtures/flowmap/): tiny networks with random non-zero weights in the
release layouts, and the final latents of the flow-map sampler computed by a reference written here, in float64, from
the upstream formulas (snap-research/alphaflow `src/training/dit.py`, `reverse_recflow_step`; kyungmnlee/dmf
`models/dmft.py`, `models/layers.py`, `samplers.py`):

  meanflow.pt    an α-Flow / MeanFlow training snapshot as torch.save writes it: {'cfg': config objects (an object
                 of a class only this script defines, an argparse.Namespace, a set), 'ema': {'model.<backbone>'
                 (two timestep embedders: noise_labels_embedder of t, noise_labels_next_embedder of t - r; pos_embed),
                 'autoencoder.*' (a VAE's tensors: not used), 'autoencoder_mean' and 'autoencoder_var' (float64
                 [1, 4, 8, 8]), 'are_ldm_stats_inited' (bool), 'num_updates' (int64)}, 'net': the same backbone,
                 'optimizer': an Adam state dict, 'vis': another object of this script's class}
  dmf.pt         a Decoupled MeanFlow flat state dict (one t_embedder, with logvar_linear.*): 3 blocks, split 2
  dmf_qk.pt      the same with q/k RMSNorm (blocks.N.attn.{q_norm,k_norm}.scale), as DMF's 512 px model
  cases.safetensors  per case: `<case>.noise` [K+1, N, 4, 8, 8] (index 0 the starting latent, i+1 the fresh noise of
                 step i), `<case>.out` [N, 4, 8, 8] the final latent in the model's space, and for meanflow
                 `<case>.vae` the VAE's raw latent x * sqrt(var + 1e-16) + mean; the labels and each case's settings
                 are in the JSON metadata.

The sampler (float64 state, the network in float64 on fp16-representable weights):
  plain step t -> r:   x <- x + (r - t) u(x; t, r)
  consistency step:    u at (t, r = 0); x0 = x - t u; x <- (1 - r) x0 + r z   (α-Flow; the last step r = 0 adds none)
  guidance s > 1:      u = u(null) + s (u(y) - u(null)) on all channels, only for t in [lo, hi]
  shift s:             t' = s t / (1 + (s - 1) t) on the grid (DMF's get_tsteps)
Needs: torch, numpy, safetensors.  Usage: python tools/make_flowmap_fixtures.py [--out tests/fixtures/flowmap]
"""
import argparse
import json
import math
import os

import numpy as np
import torch
from safetensors.torch import save_file

D, DEPTH, HEADS, P, C, LATENT, CLASSES = 64, 3, 2, 2, 4, 8, 10
NULL = CLASSES
LABELS = [3, 7, NULL]


class TrainingVisualiser:
    """Stands for the objects a training snapshot pickles (a visualiser's state): a reader must step over them."""

    def __init__(self, every):
        self.every = every
        self.history = {"loss": [0.5, 0.25]}


def fp16_exact(t):
    return t.half().double()


def pos_embed(d, g):
    q = d // 4
    w = 1.0 / 10000 ** (np.arange(q, dtype=np.float64) / q)
    rows = []
    for r in range(g):
        for c in range(g):
            rows.append(np.concatenate([np.sin(c * w), np.cos(c * w), np.sin(r * w), np.cos(r * w)]))
    return torch.from_numpy(np.array(rows))[None]


def backbone(gen, embedders, qk_norm):
    """Random non-zero weights under the release's names (fp16-exact float64)."""
    def rnd(*shape, scale):
        return fp16_exact(torch.randn(*shape, generator=gen, dtype=torch.float64) * scale)

    sd = {}

    def linear(name, out, inp):
        sd[f"{name}.weight"] = rnd(out, inp, scale=1.0 / math.sqrt(inp))
        sd[f"{name}.bias"] = rnd(out, scale=0.1)

    sd["x_embedder.proj.weight"] = rnd(D, C, P, P, scale=1.0 / math.sqrt(C * P * P))
    sd["x_embedder.proj.bias"] = rnd(D, scale=0.1)
    sd["pos_embed"] = pos_embed(D, LATENT // P)
    for e in embedders:
        linear(f"{e}.mlp.0", D, 256)
        linear(f"{e}.mlp.2", D, D)
    sd["y_embedder.embedding_table.weight"] = rnd(CLASSES + 1, D, scale=0.5)
    for i in range(DEPTH):
        b = f"blocks.{i}."
        linear(b + "adaLN_modulation.1", 6 * D, D)
        linear(b + "attn.qkv", 3 * D, D)
        if qk_norm:
            sd[b + "attn.q_norm.scale"] = fp16_exact(1.0 + 0.3 * torch.randn(D // HEADS, generator=gen, dtype=torch.float64))
            sd[b + "attn.k_norm.scale"] = fp16_exact(1.0 + 0.3 * torch.randn(D // HEADS, generator=gen, dtype=torch.float64))
        linear(b + "attn.proj", D, D)
        linear(b + "mlp.fc1", 4 * D, D)
        linear(b + "mlp.fc2", D, 4 * D)
    linear("final_layer.adaLN_modulation.1", 2 * D, D)
    linear("final_layer.linear", P * P * C, D)
    return sd


def t_embed(sd, name, t):
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    args = t[:, None] * freqs[None]
    f = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    h = torch.nn.functional.silu(f @ sd[f"{name}.mlp.0.weight"].T + sd[f"{name}.mlp.0.bias"])
    return h @ sd[f"{name}.mlp.2.weight"].T + sd[f"{name}.mlp.2.bias"]


def lin(sd, name, x):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def ln(x):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), eps=1e-6)


def rms(x, scale):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * scale


def block(sd, i, x, c, qk_norm):
    b = f"blocks.{i}."
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = lin(sd, b + "adaLN_modulation.1", torch.nn.functional.silu(c)).chunk(6, dim=-1)
    n, t, d = x.shape
    h = ln(x) * (1 + scale_msa[:, None]) + shift_msa[:, None]
    q, k, v = lin(sd, b + "attn.qkv", h).reshape(n, t, 3, HEADS, d // HEADS).permute(2, 0, 1, 3, 4).unbind(0)  # (N, T, H, hd)
    if qk_norm:
        q, k = rms(q, sd[b + "attn.q_norm.scale"]), rms(k, sd[b + "attn.k_norm.scale"])
    q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (N, H, T, hd)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // HEADS), dim=-1)
    a = (w @ v).transpose(1, 2).reshape(n, t, d)
    x = x + gate_msa[:, None] * lin(sd, b + "attn.proj", a)
    h = ln(x) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
    mlp = lin(sd, b + "mlp.fc2", torch.nn.functional.gelu(lin(sd, b + "mlp.fc1", h), approximate="tanh"))
    return x + gate_mlp[:, None] * mlp


def network(sd, kind, x, t, r, y, dmf_depth=None, qk_norm=False):
    """u(x; t, r) [N, 4, 8, 8]: MeanFlow c = E1(t) + E2(t - r) + Y(y); DMF c_t = E(t) + Y(y) for blocks before the
    split, c_r = E(r) + Y(y) for the rest and the final layer."""
    n = x.shape[0]
    h = torch.nn.functional.conv2d(x, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"], stride=P)
    h = h.flatten(2).transpose(1, 2) + sd["pos_embed"]
    yv = sd["y_embedder.embedding_table.weight"][y]
    if kind == "meanflow":
        c = t_embed(sd, "noise_labels_embedder", t) + t_embed(sd, "noise_labels_next_embedder", t - r) + yv
        cs = [c] * DEPTH
        c_final = c
    else:
        c_t, c_r = t_embed(sd, "t_embedder", t) + yv, t_embed(sd, "t_embedder", r) + yv
        cs = [c_t if i < dmf_depth else c_r for i in range(DEPTH)]
        c_final = c_r
    for i in range(DEPTH):
        h = block(sd, i, h, cs[i], qk_norm)
    shift, scale = lin(sd, "final_layer.adaLN_modulation.1", torch.nn.functional.silu(c_final)).chunk(2, dim=-1)
    h = lin(sd, "final_layer.linear", ln(h) * (1 + scale[:, None]) + shift[:, None])
    g = LATENT // P
    h = h.reshape(n, g, g, P, P, C).permute(0, 5, 1, 3, 2, 4)
    return h.reshape(n, C, LATENT, LATENT)


def sample(sd, kind, noise, labels, grid, consistency=False, cfg=1.0, interval=(0.0, 1.0), **net):
    y = torch.tensor(labels)
    n = len(labels)
    x = noise[0].double()
    for i in range(len(grid) - 1):
        t, r = grid[i], grid[i + 1]
        r_model = 0.0 if consistency else r
        guided = cfg != 1.0 and interval[0] <= t <= interval[1]
        xin, yin = (torch.cat([x, x]), torch.cat([y, torch.full_like(y, NULL)])) if guided else (x, y)
        m = xin.shape[0]
        u = network(sd, kind, xin, torch.full((m,), t, dtype=torch.float64), torch.full((m,), r_model, dtype=torch.float64), yin, **net)
        if guided:
            u = u[n:] + cfg * (u[:n] - u[n:])
        if consistency:
            x0 = x - t * u
            x = (1 - r) * x0 + r * noise[i + 1].double()
        else:
            x = x + (r - t) * u
    return x


def shifted(grid, s):
    return [s * t / (1 + (s - 1) * t) for t in grid]


def uniform(k):
    return [(k - i) / k for i in range(k + 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/flowmap")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    gen = torch.Generator().manual_seed(20261206)

    # MeanFlow / α-Flow: a training snapshot.
    mf = backbone(gen, ["noise_labels_embedder", "noise_labels_next_embedder"], False)
    mean = torch.randn(1, C, LATENT, LATENT, generator=gen, dtype=torch.float64) * 0.7
    var = torch.rand(1, C, LATENT, LATENT, generator=gen, dtype=torch.float64) * 30 + 5
    ema = {"model." + k: v.float() for k, v in mf.items()}
    ema["autoencoder.decoder.conv_in.weight"] = torch.randn(8, C, 3, 3, generator=gen)
    ema["autoencoder.encoder.conv_in.weight"] = torch.randn(8, 3, 3, 3, generator=gen)
    ema["autoencoder_mean"] = mean
    ema["autoencoder_var"] = var
    ema["are_ldm_stats_inited"] = torch.tensor(True)
    ema["num_updates"] = torch.tensor(1000)
    net = {"model." + k: (v.float() * 0.5).contiguous() for k, v in list(mf.items())[:4]}
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))])
    opt.step()
    cfg = {"model": {"dim": D, "num_blocks": DEPTH, "num_heads": HEADS}, "sampling": {"steps": [1, 2]},
           "tags": {"fixture", "tiny"}, "args": argparse.Namespace(lr=1e-4), "visualiser": TrainingVisualiser(100)}
    torch.save({"cfg": cfg, "ema": ema, "net": net, "optimizer": opt.state_dict(), "vis": TrainingVisualiser(5)},
               os.path.join(args.out, "meanflow.pt"))

    # DMF: flat state dicts, with the log-variance head upstream's strict=False load skips.
    dmf = backbone(gen, ["t_embedder"], False)
    dmf_qk = backbone(gen, ["t_embedder"], True)
    for sd, name in [(dmf, "dmf.pt"), (dmf_qk, "dmf_qk.pt")]:
        flat = {k: v.float() for k, v in sd.items()}
        flat["logvar_linear.weight"] = torch.randn(1, 256, generator=gen)
        flat["logvar_linear.bias"] = torch.randn(1, generator=gen)
        torch.save(flat, os.path.join(args.out, name))

    n = len(LABELS)
    cases = [
        ("meanflow_1", mf, "meanflow", dict(grid=uniform(1))),
        ("meanflow_2", mf, "meanflow", dict(grid=uniform(2))),
        ("meanflow_2c", mf, "meanflow", dict(grid=[1.0, 0.55, 0.0], consistency=True)),
        ("meanflow_3g", mf, "meanflow", dict(grid=uniform(3), cfg=2.0, interval=(0.0, 0.75))),
        ("dmf_1", dmf, "dmf", dict(grid=uniform(1))),
        ("dmf_2", dmf, "dmf", dict(grid=uniform(2))),
        ("dmf_4", dmf, "dmf", dict(grid=uniform(4))),
        ("dmf_4g", dmf, "dmf", dict(grid=uniform(4), cfg=1.5, interval=(0.0, 0.7))),
        ("dmf_qk_2s", dmf_qk, "dmf", dict(grid=shifted(uniform(2), 1.5), shift=1.5)),
    ]
    tensors, meta = {}, {"labels": LABELS, "dmf_depth": 2, "classes": CLASSES, "cases": {}}
    for name, sd, kind, o in cases:
        k = len(o["grid"]) - 1
        noise = torch.randn(k + 1, n, C, LATENT, LATENT, generator=gen)
        net_args = {} if kind == "meanflow" else {"dmf_depth": 2, "qk_norm": "attn.q_norm.scale" in "".join(sd)}
        out = sample(sd, kind, noise, LABELS, o["grid"], o.get("consistency", False), o.get("cfg", 1.0),
                     o.get("interval", (0.0, 1.0)), **net_args)
        moved = (out - noise[0].double()).abs().max().item()
        assert moved > 0.1, f"{name}: the sample moved only {moved} from the noise"
        tensors[f"{name}.noise"] = noise.contiguous()
        tensors[f"{name}.out"] = out.float().contiguous()
        if kind == "meanflow":
            tensors[f"{name}.vae"] = (out * torch.sqrt(var[0] + 1e-16) + mean[0]).float().contiguous()
        meta["cases"][name] = {"kind": kind, "steps": k, "grid": o["grid"], "consistency": o.get("consistency", False),
                               "cfg": o.get("cfg", 1.0), "interval": list(o.get("interval", (0.0, 1.0))),
                               "shift": o.get("shift", 1.0), "max_abs": out.abs().max().item()}
        print(f"{name}: K={k} |out| max {out.abs().max().item():.3f}, moved {moved:.3f} from the noise")

    # Self-checks of the reference (flowmap.md): one step is eps - u(eps; 1, 0); DMF at r = t is the base flow
    # (every block on E(t), whatever the split); α-Flow's one-step consistency sample is its plain one.
    e = tensors["meanflow_1.noise"][0].double()
    y = torch.tensor(LABELS)
    one = e - network(mf, "meanflow", e, torch.ones(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64), y)
    assert torch.allclose(one, sample(mf, "meanflow", tensors["meanflow_1.noise"], LABELS, [1.0, 0.0]))
    c1 = sample(mf, "meanflow", tensors["meanflow_1.noise"], LABELS, [1.0, 0.0], consistency=True)
    assert torch.allclose(one, c1)
    tt = torch.full((n,), 0.4, dtype=torch.float64)
    a = network(dmf, "dmf", e, tt, tt, y, dmf_depth=2)
    b = network(dmf, "dmf", e, tt, tt, y, dmf_depth=0)
    assert torch.allclose(a, b), "DMF at r = t must not depend on the split"
    save_file(tensors, os.path.join(args.out, "cases.safetensors"), metadata={"desc": json.dumps(meta)})
    print("wrote", args.out)


if __name__ == "__main__":
    main()
