#!/usr/bin/env python3
"""Writes the VAE-decoder fixtures in tests/fixtures/ from an independent reference: diffusers' AutoencoderKL.

1. A small-channel config with random non-zero weights, in the three checkpoint layouts `dit convert` reads:
     vae_small/diffusion_pytorch_model.safetensors + config.json   diffusers, current attention names (to_q, ...)
     vae_small_legacy.safetensors                                  diffusers, legacy names (query, key, value, proj_attn)
     vae_small_ldm.safetensors                                     original ldm names under first_stage_model., with
                                                                   extra tensors a full SD checkpoint has
     vae_small_io.safetensors                                      latent [1,4,8,8] and the decoded image [1,3,16,16]
2. The real sd-vae architecture (block_out_channels 128/256/512/512) at a 32x32 latent. Its 49.5M weights are too
   large to commit, so they come from a formula the Rust test computes identically (`det_values` below): for a tensor
   named `name`, value i is SplitMix64 output i+1 from seed FNV-1a-64(name), mapped to [-1, 1) as
   (z >> 40) / 2^24 * 2 - 1 in float32, times a float32 scale, rounded to fp16.
     vae_sd_io.safetensors                                         latent [1,4,32,32] and the image [1,3,256,256]
     vae_sd512_io.safetensors                                      latent [1,4,64,64] and the image [1,3,512,512]
                                                                   (fp16, to keep the file small), for the full-size
                                                                   512 px test (tests/full_size.rs, run by hand)
3. A small config whose activations the Rust test splits into channel parts by capping the storage binding size
   (block_out_channels 16/32/32, 4 groups, deterministic weights as in 2):
     vae_split_io.safetensors                                      latent [1,4,8,8] and the image [1,3,32,32]

The references use the same fp16-rounded weights. Usage: python tools/make_vae_fixtures.py [--out tests/fixtures]
"""
import argparse
import json
import os

import numpy as np
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def det_values(name, n, scale):
    """The deterministic stream (see the module docstring), as float32 before the fp16 rounding."""
    with np.errstate(over="ignore"):
        idx = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(fnv1a64(name)) + idx * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = ((z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)) * np.float32(2) - np.float32(1)
    return u * np.float32(scale)


def det_scale(name, shape):
    """Scale of a tensor in the deterministic weights: 1/sqrt(fan in) for weights, small for biases, GN near 1."""
    if len(shape) >= 2:
        return float(np.float32(1.0 / np.sqrt(float(np.prod(shape[1:])))))
    if ("norm" in name) and name.endswith(".weight"):
        return 0.1  # added to 1 below
    return 0.05


def det_tensor(name, shape):
    v = det_values(name, int(np.prod(shape)), det_scale(name, shape))
    if len(shape) == 1 and ("norm" in name) and name.endswith(".weight"):
        v = np.float32(1) + v
    return torch.from_numpy(v.astype(np.float16).reshape(shape))


def decoder_keys(vae):
    return [k for k in vae.state_dict() if k.startswith("decoder.") or k.startswith("post_quant_conv.")]


def randomize(vae, gen):
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if p.ndim >= 2:
                scale = 1.0 / np.sqrt(float(np.prod(p.shape[1:])))
                p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * (torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1))
            else:
                p.copy_(0.2 * (torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1))
            p.copy_(p.to(torch.float16).to(p.dtype))


def write_io(vae, cfg, latent, path, half=False):
    """Decodes `latent` (scaled as the sampler returns it) and saves latent + image; returns the image."""
    with torch.no_grad():
        img = vae.decode(latent / cfg["scaling_factor"]).sample
    save_file({"latent": latent.contiguous(), "image": (img.half() if half else img.float()).contiguous()}, path)
    return img


def with_det_weights(vae):
    """Loads the deterministic weights (det_tensor) into every decoder tensor; returns their count."""
    state = vae.state_dict()
    for k in decoder_keys(vae):
        state[k] = det_tensor(k, tuple(state[k].shape)).to(torch.float32)
    vae.load_state_dict(state)
    return sum(state[k].numel() for k in decoder_keys(vae))


def legacy_names(sd):
    out = {}
    for k, v in sd.items():
        for new, old in [(".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")]:
            if ".attentions." in k:
                k = k.replace(new, old)
        out[k] = v
    return out


def ldm_names(sd, levels):
    """diffusers decoder names -> the original ldm names (attention projections as 1x1 convs)."""
    out = {}
    for k, v in sd.items():
        n = k
        if n.startswith("decoder.mid_block."):
            r = n[len("decoder.mid_block."):]
            r = r.replace("resnets.0.", "block_1.").replace("resnets.1.", "block_2.")
            r = r.replace("attentions.0.group_norm.", "attn_1.norm.")
            for new, old in [("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]:
                r = r.replace(f"attentions.0.{new}.", f"attn_1.{old}.")
            if r.startswith("attn_1.") and r.endswith(".weight") and not r.startswith("attn_1.norm"):
                v = v.reshape(v.shape[0], v.shape[1], 1, 1)
            n = "decoder.mid." + r
        elif n.startswith("decoder.up_blocks."):
            i, r = n[len("decoder.up_blocks."):].split(".", 1)
            level = levels - 1 - int(i)
            r = r.replace("resnets.", "block.").replace("upsamplers.0.conv.", "upsample.conv.")
            n = f"decoder.up.{level}.{r}"
        elif n.startswith("decoder.conv_norm_out."):
            n = "decoder.norm_out." + n[len("decoder.conv_norm_out."):]
        n = n.replace(".conv_shortcut.", ".nin_shortcut.")
        out["first_stage_model." + n] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "vae_small"), exist_ok=True)
    torch.manual_seed(0)

    # 1. Small config, three layouts.
    cfg = dict(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        block_out_channels=[32, 64],
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
        scaling_factor=0.18215,
    )
    vae = AutoencoderKL(**cfg).to(torch.float64).eval()
    randomize(vae, torch.Generator().manual_seed(7))
    sd = {k: v.to(torch.float16).contiguous() for k, v in vae.state_dict().items()}
    # The decoder, post_quant_conv, and two tensors of what the converter must ignore (encoder, quant_conv).
    keep = set(decoder_keys(vae)) | {"encoder.conv_in.weight", "quant_conv.weight"}
    save_file({k: v for k, v in sd.items() if k in keep}, os.path.join(args.out, "vae_small", "diffusion_pytorch_model.safetensors"))
    with open(os.path.join(args.out, "vae_small", "config.json"), "w") as f:
        json.dump({"_class_name": "AutoencoderKL", **cfg}, f, indent=2)
    dec = {k: sd[k] for k in decoder_keys(vae)}
    save_file(legacy_names(dec), os.path.join(args.out, "vae_small_legacy.safetensors"))
    ldm = ldm_names(dec, len(cfg["block_out_channels"]))
    # What else a full SD checkpoint holds: ignored by the converter.
    ldm["first_stage_model.encoder.conv_in.weight"] = sd["encoder.conv_in.weight"]
    ldm["first_stage_model.quant_conv.weight"] = sd["quant_conv.weight"]
    ldm["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(4, 4, dtype=torch.float16)
    save_file({k: v.contiguous() for k, v in ldm.items()}, os.path.join(args.out, "vae_small_ldm.safetensors"))
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(8), dtype=torch.float64) * 0.8
    with torch.no_grad():
        img = vae.decode(latent / cfg["scaling_factor"]).sample
    save_file({"latent": latent.float().contiguous(), "image": img.float().contiguous()}, os.path.join(args.out, "vae_small_io.safetensors"))
    print(f"vae_small: image {tuple(img.shape)}, max|image| {img.abs().max().item():.3f}")

    # 2. The real architecture, deterministic weights.
    sd_cfg = dict(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[128, 256, 512, 512],
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=256,
        scaling_factor=0.18215,
    )
    big = AutoencoderKL(**sd_cfg).eval()
    n = with_det_weights(big)
    latent = torch.from_numpy(det_values("latent", 4 * 32 * 32, 1.0).reshape(1, 4, 32, 32))
    img = write_io(big, sd_cfg, latent, os.path.join(args.out, "vae_sd_io.safetensors"))
    print(f"vae_sd: {n} decoder parameters, image {tuple(img.shape)}, max|image| {img.abs().max().item():.3f}")
    latent = torch.from_numpy(det_values("latent 512", 4 * 64 * 64, 1.0).reshape(1, 4, 64, 64))
    img = write_io(big, sd_cfg, latent, os.path.join(args.out, "vae_sd512_io.safetensors"), half=True)
    print(f"vae_sd512: image {tuple(img.shape)}, max|image| {img.abs().max().item():.3f}")

    # 3. Small, for the channel-part split.
    split_cfg = dict(sd_cfg, down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
                     block_out_channels=[16, 32, 32], layers_per_block=1, norm_num_groups=4, sample_size=32)
    small = AutoencoderKL(**split_cfg).eval()
    with_det_weights(small)
    latent = torch.from_numpy(det_values("latent split", 4 * 8 * 8, 1.0).reshape(1, 4, 8, 8))
    img = write_io(small, split_cfg, latent, os.path.join(args.out, "vae_split_io.safetensors"))
    print(f"vae_split: image {tuple(img.shape)}, max|image| {img.abs().max().item():.3f}")

if __name__ == "__main__":
    main()
