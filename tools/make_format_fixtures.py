#!/usr/bin/env python3
"""Writes the same DiT (tests/fixtures/dit_p2_hd72_nosigma.safetensors) in the other layouts `dit convert` reads,
into tests/fixtures/dit_formats/, for the test that they all convert to byte-identical shards:
  official.pt                 torch.save of the state dict with the release's names (as DiT-XL-2-256x256.pt)
  train.pt                    a training checkpoint {model, ema, opt, args}: the converter must use `ema`
  diffusers/diffusion_pytorch_model.safetensors + config.json    the diffusers DiTTransformer2DModel layout
  evil.pt                     a checkpoint whose pickle calls os.system: the converter must refuse it
Values are fp16-exact, so every layout holds the same numbers. Usage: python tools/make_format_fixtures.py
"""
import argparse
import io
import json
import os
import pickle
import zipfile

import torch
from safetensors.torch import load_file, save_file

from dit_keys import official_to_diffusers

here = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
out = os.path.join(here, "dit_formats")
os.makedirs(os.path.join(out, "diffusers"), exist_ok=True)
sd = {k: v.to(torch.float16) for k, v in load_file(os.path.join(here, "dit_p2_hd72_nosigma.safetensors")).items()}

torch.save(sd, os.path.join(out, "official.pt"))
noisy = {k: v + 1 for k, v in sd.items()}  # `model` differs from `ema`: picking the wrong one shows
torch.save({"model": noisy, "ema": sd, "opt": {"state": {}, "param_groups": [{"lr": 1e-4}]},
            "args": argparse.Namespace(model="DiT-custom", image_size=128)}, os.path.join(out, "train.pt"))

depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
d = official_to_diffusers(sd)
save_file({k: v.clone().contiguous() for k, v in d.items()}, os.path.join(out, "diffusers", "diffusion_pytorch_model.safetensors"))
with open(os.path.join(out, "diffusers", "config.json"), "w") as f:
    json.dump({"_class_name": "DiTTransformer2DModel", "num_attention_heads": 1, "attention_head_dim": 72, "in_channels": 4,
               "out_channels": 4, "num_layers": depth, "sample_size": 16, "patch_size": 2, "num_embeds_ada_norm": 10}, f, indent=2)

# os.system("echo pwned") as protocol-2 pickle bytes (written, never loaded).
evil = b"\x80\x02cos\nsystem\nq\x00X\x0b\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."
with zipfile.ZipFile(os.path.join(out, "evil.pt"), "w") as z:
    z.writestr("evil/data.pkl", evil)
    z.writestr("evil/version", "3\n")
print("wrote", sorted(os.listdir(out)))
