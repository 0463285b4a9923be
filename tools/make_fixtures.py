#!/usr/bin/env python3
"""Writes the DiT parity fixtures in tests/fixtures/ from an independent reference: diffusers' DiTTransformer2DModel,
configured to the official DiT semantics (docs: dit-spec.md section 7), with random non-zero weights.

For each config it writes
  dit_<name>.safetensors     the weights under the release's key names (what `dit convert` reads), fp16-rounded
  dit_<name>_io.safetensors  inputs x [N,4,H,W], t [N], y [N] and the reference output [N,Cout,H,W] (float32)
  dit_<name>.json            the config and the `--heads` the converter needs when the size is not a preset

The reference runs in float64 on the same fp16-rounded weights the GPU reads.
Usage: python tools/make_fixtures.py [--out tests/fixtures]   (needs torch, diffusers, safetensors, numpy)
"""
import argparse
import json
import os

import numpy as np
import torch
from diffusers import DiTTransformer2DModel
from safetensors.torch import save_file

from dit_keys import official_semantics

# name, heads, head_dim, depth, patch, latent, classes, learn_sigma, batch, storage dtype, store pos_embed
CONFIGS = [
    ("p2_hd64", 2, 64, 2, 2, 8, 1000, True, 3, torch.float16, True),
    ("p4_hd72", 2, 72, 2, 4, 16, 10, True, 3, torch.float16, False),
    ("p2_hd72_nosigma", 1, 72, 2, 2, 16, 10, False, 4, torch.float32, False),
]


def randomize(model, gen):
    """Random, non-zero weights everywhere (the release zero-inits adaLN and the final layer, which would hide bugs),
    rounded to fp16, with every block's copy of the embedders tied to block 0 (the release has one embedder)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p.shape[1] if p.ndim >= 2 else p.shape[0]
            if p.ndim >= 2:
                fan_in = int(np.prod(p.shape[1:]))
            scale = 1.0 / np.sqrt(fan_in)
            if "embedding_table" in name:
                scale = 1.0
            elif "norm1.linear" in name or "proj_out_1" in name:
                scale *= 2.0  # modulation of order one: gates and scales that matter
            p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale)
            p.copy_(p.to(torch.float16).to(p.dtype))
        emb0 = model.transformer_blocks[0].norm1.emb
        for blk in model.transformer_blocks[1:]:
            blk.norm1.emb.load_state_dict(emb0.state_dict())


def official_state_dict(model, cfg_pos_embed):
    """Maps diffusers names to the release's names (dit-spec.md section 2)."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    b0 = "transformer_blocks.0.norm1.emb."
    out = {
        "x_embedder.proj.weight": sd["pos_embed.proj.weight"],
        "x_embedder.proj.bias": sd["pos_embed.proj.bias"],
        "t_embedder.mlp.0.weight": sd[b0 + "timestep_embedder.linear_1.weight"],
        "t_embedder.mlp.0.bias": sd[b0 + "timestep_embedder.linear_1.bias"],
        "t_embedder.mlp.2.weight": sd[b0 + "timestep_embedder.linear_2.weight"],
        "t_embedder.mlp.2.bias": sd[b0 + "timestep_embedder.linear_2.bias"],
        "y_embedder.embedding_table.weight": sd[b0 + "class_embedder.embedding_table.weight"],
        "final_layer.adaLN_modulation.1.weight": sd["proj_out_1.weight"],
        "final_layer.adaLN_modulation.1.bias": sd["proj_out_1.bias"],
        "final_layer.linear.weight": sd["proj_out_2.weight"],
        "final_layer.linear.bias": sd["proj_out_2.bias"],
    }
    for i in range(len(model.transformer_blocks)):
        b = f"transformer_blocks.{i}."
        o = f"blocks.{i}."
        out[o + "adaLN_modulation.1.weight"] = sd[b + "norm1.linear.weight"]
        out[o + "adaLN_modulation.1.bias"] = sd[b + "norm1.linear.bias"]
        for part in ("weight", "bias"):
            out[o + f"attn.qkv.{part}"] = torch.cat([sd[b + f"attn1.to_{s}.{part}"] for s in "qkv"], dim=0)
        out[o + "attn.proj.weight"] = sd[b + "attn1.to_out.0.weight"]
        out[o + "attn.proj.bias"] = sd[b + "attn1.to_out.0.bias"]
        out[o + "mlp.fc1.weight"] = sd[b + "ff.net.0.proj.weight"]
        out[o + "mlp.fc1.bias"] = sd[b + "ff.net.0.proj.bias"]
        out[o + "mlp.fc2.weight"] = sd[b + "ff.net.2.weight"]
        out[o + "mlp.fc2.bias"] = sd[b + "ff.net.2.bias"]
    if cfg_pos_embed:
        out["pos_embed"] = model.pos_embed.pos_embed.detach().clone()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for i, (name, heads, hd, depth, patch, latent, classes, sigma, batch, dtype, store_pos) in enumerate(CONFIGS):
        gen = torch.Generator().manual_seed(1000 + i)
        cin = 4
        model = DiTTransformer2DModel(
            num_attention_heads=heads,
            attention_head_dim=hd,
            in_channels=cin,
            out_channels=2 * cin if sigma else cin,
            num_layers=depth,
            sample_size=latent,
            patch_size=patch,
            num_embeds_ada_norm=classes,
        ).to(torch.float64)
        official_semantics(model)
        randomize(model, gen)
        model.eval()

        x = torch.randn(batch, cin, latent, latent, generator=gen, dtype=torch.float64)
        t = torch.tensor([0, 500, 999, 250][:batch], dtype=torch.float64)
        y = torch.tensor([1, 7, classes, 3][:batch], dtype=torch.int64)  # classes = the null class
        with torch.no_grad():
            out = model(x, timestep=t, class_labels=y).sample

        weights = {k: v.to(dtype).contiguous() for k, v in official_state_dict(model, store_pos).items()}
        save_file(weights, os.path.join(args.out, f"dit_{name}.safetensors"))
        save_file(
            {
                "x": x.float().contiguous(),
                "t": t.float().contiguous(),
                "y": y.to(torch.int32).contiguous(),
                "out": out.float().contiguous(),
            },
            os.path.join(args.out, f"dit_{name}_io.safetensors"),
        )
        meta = {
            "heads": heads,
            "head_dim": hd,
            "depth": depth,
            "patch_size": patch,
            "input_size": latent,
            "num_classes": classes,
            "learn_sigma": sigma,
            "batch": batch,
            "storage_dtype": str(dtype).replace("torch.", ""),
            "reference": "diffusers DiTTransformer2DModel, float64, downscale_freq_shift=0, norm3.eps=1e-6",
        }
        with open(os.path.join(args.out, f"dit_{name}.json"), "w") as f:
            json.dump(meta, f, indent=2)
        print(f"dit_{name}: out {tuple(out.shape)}, max|out| {out.abs().max().item():.3f}")


if __name__ == "__main__":
    main()
