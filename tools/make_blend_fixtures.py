#!/usr/bin/env python3
"""Writes the class-blend parity fixture tests/fixtures/dit_p4_hd72_blend_io.safetensors: the DiT forward of the
committed fixture weights dit_p4_hd72.safetensors (random, non-zero, fp16-rounded; 10 classes) with each row's label
embedding a blend of two table rows, y_emb = (1 - alpha) * table[a] + alpha * table[b].

The reference is written here from the formulas of dit-spec.md section 1 in numpy, float64. Before it is trusted with
blends it must reproduce the diffusers output stored in dit_p4_hd72_io.safetensors (plain labels, written by
tools/make_fixtures.py); the script stops if it does not.

Writes x [N,4,H,W], t [N], a [N], b [N] (int32), alpha [N] and out [N,Cout,H,W] (float32).
Usage: python tools/make_blend_fixtures.py [--fixtures tests/fixtures]   (needs numpy, safetensors)
"""
import argparse
import json
import math
import os

import numpy as np
from safetensors.numpy import load_file, save_file

NAME = "p4_hd72"
# Rows (a, b, alpha): blends at several weights, alpha 1 (b alone), the null class (10) unblended as guidance uses it.
ROWS = [(1, 7, 0.3), (5, 2, 1.0), (10, 10, 0.0), (3, 9, 0.75)]
T = [0.0, 500.0, 999.0, 250.0]


def pos_embed(d, g):
    """Fixed 2D sin-cos positions: token (r, c) -> [sin(c w), cos(c w), sin(r w), cos(r w)], w_k = 10000^(-k/(D/4))."""
    d4 = d // 4
    w = 10000.0 ** (-np.arange(d4) / d4)
    r, c = np.divmod(np.arange(g * g), g)
    ca, ra = c[:, None] * w, r[:, None] * w
    return np.concatenate([np.sin(ca), np.cos(ca), np.sin(ra), np.cos(ra)], axis=1)


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def layernorm(x, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def linear(x, w, prefix):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def forward(w, x, t, y_emb, heads):
    """eps_v = DiT(x, t, y) with the label embedding y_emb [N, D] given (dit-spec.md section 1)."""
    n, cin, h, _ = x.shape
    pw = w["x_embedder.proj.weight"]  # [D, C, p, p]
    d, p = pw.shape[0], pw.shape[2]
    g = h // p
    # Patches in (channel, ky, kx) order, tokens row-major over the grid.
    patches = x.reshape(n, cin, g, p, g, p).transpose(0, 2, 4, 1, 3, 5).reshape(n, g * g, cin * p * p)
    tok = patches @ pw.reshape(d, -1).T + w["x_embedder.proj.bias"] + pos_embed(d, g)
    f = np.exp(-math.log(10000.0) * np.arange(128) / 128)
    e = np.concatenate([np.cos(t[:, None] * f), np.sin(t[:, None] * f)], axis=1)
    t_emb = linear(silu(linear(e, w, "t_embedder.mlp.0")), w, "t_embedder.mlp.2")
    sc = silu(t_emb + y_emb)  # [N, D]
    depth = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("blocks."))
    hd = d // heads
    for i in range(depth):
        b = f"blocks.{i}."
        m = linear(sc, w, b + "adaLN_modulation.1")[:, None, :]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = np.split(m, 6, axis=-1)
        hmod = layernorm(tok) * (1 + scale_msa) + shift_msa
        qkv = linear(hmod, w, b + "attn.qkv").reshape(n, g * g, 3, heads, hd).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [N, heads, T, hd]
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        a = a.transpose(0, 2, 1, 3).reshape(n, g * g, d)
        tok = tok + gate_msa * linear(a, w, b + "attn.proj")
        hmod = layernorm(tok) * (1 + scale_mlp) + shift_mlp
        tok = tok + gate_mlp * linear(gelu_tanh(linear(hmod, w, b + "mlp.fc1")), w, b + "mlp.fc2")
    fm = linear(sc, w, "final_layer.adaLN_modulation.1")[:, None, :]
    shift, scale = np.split(fm, 2, axis=-1)
    out = linear(layernorm(tok) * (1 + scale) + shift, w, "final_layer.linear")  # [N, T, p*p*Cout]
    cout = out.shape[-1] // (p * p)
    return out.reshape(n, g, g, p, p, cout).transpose(0, 5, 1, 3, 2, 4).reshape(n, cout, h, h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    args = ap.parse_args()
    fx = lambda name: os.path.join(args.fixtures, name)
    w = {k: v.astype(np.float64) for k, v in load_file(fx(f"dit_{NAME}.safetensors")).items()}
    with open(fx(f"dit_{NAME}.json")) as f:
        heads = json.load(f)["heads"]
    table = w["y_embedder.embedding_table.weight"]

    # The reference against diffusers, on the plain labels of the committed fixture.
    io = load_file(fx(f"dit_{NAME}_io.safetensors"))
    x0, t0, y0 = (io[k].astype(np.float64) for k in ("x", "t", "y"))
    got = forward(w, x0, t0, table[io["y"].astype(np.int64)], heads)
    diff = np.abs(got - io["out"]).max()
    print(f"numpy reference vs diffusers (dit_{NAME}_io, y={io['y'].tolist()}): max |diff| {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit("the numpy reference does not match diffusers: not writing the blend fixture")

    rng = np.random.default_rng(2024)
    n = len(ROWS)
    h = x0.shape[-1]
    x = rng.standard_normal((n, 4, h, h))
    t = np.array(T[:n])
    a = np.array([r[0] for r in ROWS])
    b = np.array([r[1] for r in ROWS])
    alpha = np.array([r[2] for r in ROWS], dtype=np.float32).astype(np.float64)
    y_emb = (1.0 - alpha)[:, None] * table[a] + alpha[:, None] * table[b]
    out = forward(w, x, t, y_emb, heads)
    # A blend that is not the plain class must change the output (else the test could not fail on a dropped blend).
    plain = forward(w, x, t, table[a], heads)
    print(f"blend vs the plain class a: max |diff| {np.abs(out - plain).max():.3f}, max |out| {np.abs(out).max():.3f}")
    save_file(
        {
            "x": x.astype(np.float32),
            "t": t.astype(np.float32),
            "a": a.astype(np.int32),
            "b": b.astype(np.int32),
            "alpha": alpha.astype(np.float32),
            "out": out.astype(np.float32),
        },
        fx(f"dit_{NAME}_blend_io.safetensors"),
    )
    print(f"wrote dit_{NAME}_blend_io.safetensors: out {out.shape}")


if __name__ == "__main__":
    main()
