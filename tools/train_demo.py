#!/usr/bin/env python3
"""Trains the embedded demo model on Fashion-MNIST (Debian package dataset-fashion-mnist, MIT; 60,000 training and
10,000 test images of 10 classes): a small SD-style VAE (32x32 RGB <-> 8x8x4 latent) and a small class-conditional
DiT on its latents, with exactly the architectures the project runs (adaLN-Zero DiT with learned sigma and a null
class for guidance; diffusers' AutoencoderKL decoder with GroupNorm, ResNets, upsampling and a mid attention).

  python tools/train_demo.py --out /tmp/demo-train [--vae-epochs 2] [--dit-steps 4000] [--seed 0]

writes to --out:
  vae/diffusion_pytorch_model.safetensors + config.json   the VAE (diffusers layout; `dit convert` reads it)
  dit.safetensors                                         the EMA DiT weights under the release's key names
  classes.json                                            class names
  log.json                                                settings, timings and final losses
Then `scripts/build_demo_model.sh` converts them into models/demo/ and writes the test sample of real images.

The images are padded 28 -> 32 with background (-1) and replicated to 3 channels, so the pipeline is the same as for
ImageNet DiT + SD-VAE. The DiT follows the release's models.py and diffusion (linear betas over 1000 steps, eps
prediction plus learned-range variance trained with the hybrid loss: MSE + the variational bound with a frozen mean),
label dropout 0.1 to the null class 10, EMA 0.9995. Before training, the DiT here is checked against diffusers'
DiTTransformer2DModel configured to the official semantics (the same check as tools/make_fixtures.py).
"""
import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        data = f.read()
    if name.endswith("labels-idx1-ubyte.gz"):
        return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)
    return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)


def to_images(u8):
    """uint8 [N, 28, 28] -> float [N, 3, 32, 32] in [-1, 1], padded with the background value."""
    x = torch.from_numpy(u8.astype(np.float32) / 127.5 - 1.0)
    x = F.pad(x, (2, 2, 2, 2), value=-1.0)
    return x[:, None].repeat(1, 3, 1, 1)


# ---------------------------------------------------------------------------------------------------------------
# DiT, as the release's models.py defines it.

def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


def timestep_embedding(t, dim=256, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def pos_embed_2d(d, g):
    q = d // 4
    w = 1.0 / 10000 ** (np.arange(q, dtype=np.float64) / q)
    out = []
    for r in range(g):
        for c in range(g):
            out.append(np.concatenate([np.sin(c * w), np.cos(c * w), np.sin(r * w), np.cos(r * w)]))
    return torch.from_numpy(np.array(out, dtype=np.float32))[None]


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(d, 3 * d)
        self.attn.proj = nn.Linear(d, d)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(d, 4 * d)
        self.mlp.fc2 = nn.Linear(4 * d, d)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        n, t, d = x.shape
        h = modulate(self.norm1(x), shift_msa, scale_msa)
        qkv = self.attn.qkv(h).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(n, t, d)
        x = x + gate_msa[:, None] * self.attn.proj(a)
        h = modulate(self.norm2(x), shift_mlp, scale_mlp)
        x = x + gate_mlp[:, None] * self.mlp.fc2(F.gelu(self.mlp.fc1(h), approximate="tanh"))
        return x


class DiT(nn.Module):
    def __init__(self, latent=8, p=2, cin=4, d=256, depth=6, heads=4, classes=10):
        super().__init__()
        self.p, self.cin, self.g = p, cin, latent // p
        self.x_embedder = nn.Module()
        self.x_embedder.proj = nn.Conv2d(cin, d, p, stride=p)
        self.t_embedder = nn.Module()
        self.t_embedder.mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.y_embedder = nn.Module()
        self.y_embedder.embedding_table = nn.Embedding(classes + 1, d)
        self.register_buffer("pos_embed", pos_embed_2d(d, self.g), persistent=False)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(depth)])
        self.final_layer = nn.Module()
        self.final_layer.norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_layer.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.final_layer.linear = nn.Linear(d, p * p * 2 * cin)
        # The release's init: zero adaLN and output layers, xavier linears.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for b in self.blocks:
            nn.init.zeros_(b.adaLN_modulation[-1].weight)
            nn.init.zeros_(b.adaLN_modulation[-1].bias)
        for m in (self.final_layer.adaLN_modulation[-1], self.final_layer.linear):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x, t, y):
        n = x.shape[0]
        h = self.x_embedder.proj(x).flatten(2).transpose(1, 2) + self.pos_embed  # (N, T, D)
        c = self.t_embedder.mlp(timestep_embedding(t).to(h.dtype)) + self.y_embedder.embedding_table(y)
        for b in self.blocks:
            h = b(h, c)
        shift, scale = self.final_layer.adaLN_modulation(c).chunk(2, dim=1)
        h = self.final_layer.linear(modulate(self.final_layer.norm(h), shift, scale))  # (N, T, p*p*2C)
        co, p, g = 2 * self.cin, self.p, self.g
        h = h.reshape(n, g, g, p, p, co).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(n, co, g * p, g * p)

    def official_state_dict(self):
        return {k: v for k, v in self.state_dict().items() if k != "pos_embed"}


def check_against_diffusers(dit, seed):
    """Random non-zero weights: this DiT and diffusers' (official semantics) must agree."""
    from dit_keys import diffusers_dit, official_to_diffusers

    g = torch.Generator().manual_seed(seed)
    ref = DiT(latent=8, p=2, cin=4, d=64, depth=2, heads=2, classes=10).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.3)
    hf = diffusers_dit(heads=2, head_dim=32, depth=2, latent=8, patch=2, classes=10).double()
    missing, unexpected = hf.load_state_dict(official_to_diffusers(ref.official_state_dict()), strict=False)
    assert not unexpected and all("pos_embed.pos_embed" in m for m in missing), (missing, unexpected)
    x = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 500, 999])
    y = torch.tensor([1, 7, 10])
    with torch.no_grad():
        a, b_ = ref(x, t, y), hf(x, timestep=t.double(), class_labels=y).sample
    diff = (a - b_).abs().max().item()
    print(f"DiT self-check against diffusers (official semantics): max |diff| = {diff:.2e}")
    assert diff < 1e-8 * max(1.0, b_.abs().max().item()), "the training DiT does not match the official semantics"


# ---------------------------------------------------------------------------------------------------------------
# Diffusion training loss (the release's GaussianDiffusion with learn_sigma: "hybrid" = MSE + frozen-mean VLB).

class Diffusion:
    def __init__(self):
        self.betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
        a = np.cumprod(1.0 - self.betas)
        ap = np.append(1.0, a[:-1])
        self.abar = a
        self.post_var = self.betas * (1.0 - ap) / (1.0 - a)
        self.post_log = np.log(np.append(self.post_var[1], self.post_var[1:]))
        self.c1 = self.betas * np.sqrt(ap) / (1.0 - a)
        self.c2 = (1.0 - ap) * np.sqrt(1.0 - self.betas) / (1.0 - a)
        self.t = lambda arr, t: torch.from_numpy(arr).float()[t][:, None, None, None]

    def loss(self, model, x0, y):
        n = x0.shape[0]
        t = torch.randint(0, 1000, (n,))
        eps = torch.randn_like(x0)
        ab = self.t(self.abar, t)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        out = model(xt, t, y)
        eps_pred, v = out[:, :4], out[:, 4:]
        mse = ((eps_pred - eps) ** 2).mean(dim=(1, 2, 3))
        # VLB term with the mean frozen (gradients reach only the variance head).
        x0_pred = (1 / ab).sqrt() * xt - (1 / ab - 1).sqrt() * eps_pred.detach()
        mean_pred = self.t(self.c1, t) * x0_pred + self.t(self.c2, t) * xt
        mean_true = self.t(self.c1, t) * x0 + self.t(self.c2, t) * xt
        frac = (v + 1) / 2
        logvar = frac * self.t(np.log(self.betas), t) + (1 - frac) * self.t(self.post_log, t)
        true_logvar = self.t(self.post_log, t)
        kl = 0.5 * (-1.0 + logvar - true_logvar + torch.exp(true_logvar - logvar) + (mean_true - mean_pred) ** 2 * torch.exp(-logvar))
        kl = kl.mean(dim=(1, 2, 3)) / math.log(2.0)
        # t = 0: decoder negative log-likelihood of x0 under N(mean, var) (continuous form for latents).
        nll = 0.5 * (math.log(2 * math.pi) + logvar + (x0 - mean_pred) ** 2 * torch.exp(-logvar))
        nll = nll.mean(dim=(1, 2, 3)) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        return (mse + vb).mean(), mse.mean().item(), vb.mean().item()


# ---------------------------------------------------------------------------------------------------------------

def train_vae(images, args, log):
    from diffusers import AutoencoderKL

    cfg = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
               block_out_channels=[16, 32, 32], layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=32)
    vae = AutoencoderKL(**cfg)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr)
    n = images.shape[0]
    steps_per_epoch = n // args.vae_batch
    t0 = time.time()
    for epoch in range(args.vae_epochs):
        perm = torch.randperm(n)
        tot = [0.0, 0.0]
        for i in range(steps_per_epoch):
            x = images[perm[i * args.vae_batch:(i + 1) * args.vae_batch]]
            post = vae.encode(x).latent_dist
            rec = vae.decode(post.sample()).sample
            l_rec = (rec - x).abs().mean() + ((rec - x) ** 2).mean()
            l_kl = post.kl().mean() / (4 * 8 * 8)
            loss = l_rec + args.vae_kl * l_kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot[0] += l_rec.item()
            tot[1] += l_kl.item()
        print(f"vae epoch {epoch + 1}/{args.vae_epochs}: rec {tot[0] / steps_per_epoch:.4f} kl {tot[1] / steps_per_epoch:.3f} ({time.time() - t0:.0f} s)", flush=True)
        log["vae_epochs"].append({"epoch": epoch + 1, "rec_l1_plus_l2": tot[0] / steps_per_epoch, "kl_per_dim": tot[1] / steps_per_epoch})
    log["vae_seconds"] = time.time() - t0
    vae.eval()
    with torch.no_grad():
        lat = torch.cat([vae.encode(images[i:i + 1000]).latent_dist.sample() for i in range(0, n, 1000)])
    scale = float(1.0 / lat.std())
    log["scaling_factor"] = scale
    return vae, cfg, lat * scale, scale


def train_dit(latents, labels, args, log, init=None):
    torch.manual_seed(args.seed + 1)
    dit = DiT(latent=8, p=2, cin=4, d=args.width, depth=args.depth, heads=args.width // 64, classes=10)
    ema = DiT(latent=8, p=2, cin=4, d=args.width, depth=args.depth, heads=args.width // 64, classes=10)
    if init is not None:
        dit.load_state_dict(init)
    ema.load_state_dict(dit.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(dit.parameters(), lr=args.dit_lr, weight_decay=0)
    diff = Diffusion()
    n = latents.shape[0]
    t0 = time.time()
    run = [0.0, 0.0, 0]
    for step in range(1, args.dit_steps + 1):
        idx = torch.randint(0, n, (args.dit_batch,))
        x0, y = latents[idx], labels[idx].clone()
        y[torch.rand(args.dit_batch) < 0.1] = 10  # label dropout to the null class
        loss, mse, vb = diff.loss(dit, x0, y)
        for grp in opt.param_groups:  # cosine from --dit-lr to --dit-lr-end over the run
            grp["lr"] = args.dit_lr_end + 0.5 * (args.dit_lr - args.dit_lr_end) * (1 + math.cos(math.pi * (step - 1) / args.dit_steps))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dit.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), dit.parameters()):
                pe.mul_(args.ema).add_(p, alpha=1 - args.ema)
        run[0] += mse
        run[1] += vb
        run[2] += 1
        if step % 250 == 0 or step == args.dit_steps:
            print(f"dit step {step}/{args.dit_steps}: mse {run[0] / run[2]:.4f} vb {run[1] / run[2]:.4f} ({time.time() - t0:.0f} s)", flush=True)
            log["dit_log"].append({"step": step, "mse": run[0] / run[2], "vb": run[1] / run[2], "seconds": time.time() - t0})
            run = [0.0, 0.0, 0]
    log["dit_seconds"] = time.time() - t0
    return ema


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vae-epochs", type=int, default=2)
    ap.add_argument("--vae-batch", type=int, default=128)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-kl", type=float, default=1e-3)
    ap.add_argument("--dit-steps", type=int, default=4000)
    ap.add_argument("--dit-batch", type=int, default=128)
    ap.add_argument("--dit-lr", type=float, default=3e-4)
    ap.add_argument("--dit-lr-end", type=float, default=None, help="cosine decay target (default: constant --dit-lr)")
    ap.add_argument("--width", type=int, default=192)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke runs)")
    ap.add_argument("--resume", default=None, help="a previous --out: keep its VAE and latents, continue its DiT")
    args = ap.parse_args()
    if args.dit_lr_end is None:
        args.dit_lr_end = args.dit_lr
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    os.makedirs(os.path.join(args.out, "vae"), exist_ok=True)
    log = {"args": vars(args), "torch": torch.__version__, "threads": torch.get_num_threads(), "vae_epochs": [], "dit_log": []}

    check_against_diffusers(DiT, args.seed)
    images = to_images(load_idx("train-images-idx3-ubyte.gz"))
    labels = torch.from_numpy(load_idx("train-labels-idx1-ubyte.gz"))
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]

    init = None
    if args.resume:
        import shutil
        from safetensors.torch import load_file

        prev = json.load(open(os.path.join(args.resume, "log.json")))
        log["resumed_from"] = prev
        if os.path.abspath(args.resume) != os.path.abspath(args.out):
            shutil.copytree(os.path.join(args.resume, "vae"), os.path.join(args.out, "vae"), dirs_exist_ok=True)
        latents = torch.load(os.path.join(args.resume, "latents.pt"))
        torch.save(latents, os.path.join(args.out, "latents.pt"))
        init = load_file(os.path.join(args.resume, "dit.safetensors"))
    else:
        vae, cfg, latents, scale = train_vae(images, args, log)
        sd = {k: v.half().contiguous() for k, v in vae.state_dict().items() if k.startswith("decoder.") or k.startswith("post_quant_conv.")}
        save_file(sd, os.path.join(args.out, "vae", "diffusion_pytorch_model.safetensors"))
        with open(os.path.join(args.out, "vae", "config.json"), "w") as f:
            json.dump({"_class_name": "AutoencoderKL", **cfg, "scaling_factor": scale}, f, indent=2)
        torch.save(latents, os.path.join(args.out, "latents.pt"))

    ema = train_dit(latents, labels, args, log, init)
    save_file({k: v.contiguous() for k, v in ema.official_state_dict().items()}, os.path.join(args.out, "dit.safetensors"))
    with open(os.path.join(args.out, "classes.json"), "w") as f:
        json.dump(CLASSES, f)
    with open(os.path.join(args.out, "log.json"), "w") as f:
        json.dump(log, f, indent=2)
    print(f"done: VAE {log.get('vae_seconds', 0):.0f} s, DiT {log['dit_seconds']:.0f} s")


if __name__ == "__main__":
    main()
