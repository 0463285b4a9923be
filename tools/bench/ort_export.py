#!/usr/bin/env python3
"""Exports a paper-preset DiT with random weights to ONNX for the onnxruntime-web comparison (tools/bench/ort.mjs).

The network is diffusers' DiTTransformer2DModel configured to the release's semantics (tools/dit_keys.py), float32,
inputs x [batch, 4, L, L] float32, t [batch] int64, y [batch] int64, output [batch, 8, L, L]: the same shapes and
operations `dit bench --preset P --random-weights` runs. Needs torch, diffusers and onnx (the tools virtualenv).
Usage: python tools/bench/ort_export.py --preset S/2 --res 256 --batch 2 --out target/bench/dit-S2-256.onnx
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from dit_keys import diffusers_dit  # noqa: E402

PRESETS = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


class Wrapped(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, t, y):
        return self.model(x, timestep=t, class_labels=y).sample


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="S/2")
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    name, patch = args.preset.split("/")
    depth, hidden, heads = PRESETS[name]
    latent = args.res // 8
    torch.manual_seed(0)
    model = Wrapped(diffusers_dit(heads, hidden // heads, depth, latent, int(patch), 1000)).eval()
    x = torch.randn(args.batch, 4, latent, latent)
    t = torch.full((args.batch,), 999, dtype=torch.long)
    y = torch.tensor(([207, 1000] * args.batch)[: args.batch])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, (x, t, y), args.out, input_names=["x", "t", "y"], output_names=["out"],
                          opset_version=17, dynamo=False)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
