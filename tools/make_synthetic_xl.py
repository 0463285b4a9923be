#!/usr/bin/env python3
"""Writes a synthetic checkpoint with the shapes, names, dtype (f32) and container of the official DiT-XL/2 256x256
release (`DiT-XL-2-256x256.pt`: a torch.save'd state dict, 2.7 GB), random weights, for measuring `dit convert`'s time
and peak memory where the real file cannot be downloaded.
Usage: python tools/make_synthetic_xl.py OUT.pt [--safetensors OUT.safetensors]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from train_demo import DiT, pos_embed_2d  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--safetensors", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    with torch.no_grad():
        model = DiT(latent=32, p=2, cin=4, d=1152, depth=28, heads=16, classes=1000)
        sd = {"pos_embed": pos_embed_2d(1152, 16).reshape(1, 256, 1152).float()}
        for k, v in model.official_state_dict().items():
            sd[k] = torch.randn_like(v) * 0.02
    torch.save(sd, args.out)
    if args.safetensors:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, args.safetensors)
    n = sum(v.numel() for v in sd.values())
    print(f"wrote {args.out}: {len(sd)} tensors, {n / 1e6:.1f}M parameters, {os.path.getsize(args.out) / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
