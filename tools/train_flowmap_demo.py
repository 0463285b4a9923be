#!/usr/bin/env python3
"""Trains the flow-map demo model: a MeanFlow network (the `meanflow` kind: DiT blocks, two timestep embedders,
c = E1(t) + E2(t - r) + Y(y)) on the latent space of the embedded demo VAE, distilled from the embedded demo DiT.

  python tools/train_flowmap_demo.py --out /tmp/flowmap-train [--pairs 10000] [--steps 3000] [--seed 0]

Why distilled: the demo VAE's encoder was not kept (models/demo holds its decoder only), so Fashion-MNIST images
cannot be encoded again. The data are the demo DiT's own samples instead: `--pairs` starting noises e, each taken by
the DiT's deterministic sampler (DDIM, `--teacher-steps`, guidance `--teacher-cfg` on channels 0..2 as the release
guides) to a latent x. So the guidance is trained in: the student learns the guided teacher's distribution and
samples at guidance 1.

The student learns the average velocity u(z_t; t, r) of the linear path z_t = (1 - t) x + t e (t = 1 noise, t = 0
data) with the MeanFlow identity as its target (Geng et al., "Mean Flows for One-step Generative Modeling"):
    u_tgt = v - (t - r) d/dt u(z_t; t, r),  v = e - x,  d/dt along (dz/dt = v, dt/dt = 1, dr/dt = 0),
computed with a Jacobian-vector product and held constant; loss ||u - u_tgt||^2 with the adaptive weight
1 / (||.||^2 + 1e-3). (t, r) are logit-normal(-0.4, 1) pairs, r = t for a share `--flow-share` (plain flow matching),
and t = 1 for a share `--end-share` (half of those with r = 0): the jumps that one- and two-step sampling make.
Labels are dropped to the null class 10 with probability 0.1. Each pair (e, x) is the teacher's own coupling, so paths
barely cross and one step already lands near x.

Latents are standardised per element as the MeanFlow/alpha-Flow release does: the model's space is
(z_vae - mean) / sqrt(var), with mean and var over the teacher's latents in the VAE's raw space (before its
scaling factor); the page decodes z_vae = x * sqrt(var + 1e-16) + mean.

Writes to --out:
  flowmap-demo.pt     a training snapshot in the release's layout ({'cfg': ..., 'ema': {'model.*', 'autoencoder_mean',
                      'autoencoder_var', 'are_ldm_stats_inited'}}); `dit convert --arch meanflow` reads it
  pairs.pt            the teacher's (noise, latent, label) pairs (reused by a rerun with the same settings)
  log.json            settings, timings and losses
Then scripts/build_flowmap_demo.sh converts it into models/demo/flowmap/.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_demo import CLASSES, DiT, modulate, pos_embed_2d, timestep_embedding  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NULL = 10


def load_teacher():
    """The embedded demo DiT (models/demo/dit: fp16 shards under the release's names) as a float32 torch module."""
    from safetensors.torch import load_file

    d = os.path.join(ROOT, "models", "demo", "dit")
    index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    cfg = index["metadata"]["config"]
    sd = {}
    for shard in sorted(set(index["weight_map"].values())):
        sd.update({k: v.float() for k, v in load_file(os.path.join(d, shard)).items()})
    dit = DiT(latent=cfg["input_size"], p=cfg["patch_size"], cin=cfg["in_channels"], d=cfg["hidden_size"],
              depth=cfg["depth"], heads=cfg["num_heads"], classes=cfg["num_classes"])
    missing, unexpected = dit.load_state_dict(sd, strict=False)
    assert not unexpected and missing == [], (missing, unexpected)
    dit.eval()
    vae = json.load(open(os.path.join(ROOT, "models", "demo", "vae", "model.safetensors.index.json")))
    return dit, cfg, vae["metadata"]["config"]["scaling_factor"]


@torch.no_grad()
def teacher_samples(dit, e, y, steps, cfg_scale):
    """DDIM (eta 0) over the release's `ddim{steps}` respacing, guidance on eps channels 0..2 (the release's rule)."""
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    abar_all = np.cumprod(1.0 - betas)
    stride = next(i for i in range(1, 1000) if -(-1000 // i) == steps)
    ts = list(range(0, 1000, stride))
    x = e.clone()
    n = x.shape[0]
    for k in reversed(range(len(ts))):
        t = ts[k]
        ab = abar_all[t]
        ab_prev = abar_all[ts[k - 1]] if k > 0 else 1.0
        out = dit(torch.cat([x, x]), torch.full((2 * n,), float(t)), torch.cat([y, torch.full_like(y, NULL)]))
        cond, uncond = out[:n, :4], out[n:, :4]
        eps = cond.clone()
        eps[:, :3] = uncond[:, :3] + cfg_scale * (cond[:, :3] - uncond[:, :3])
        x0 = math.sqrt(1 / ab) * x - math.sqrt(1 / ab - 1) * eps
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
    return x


class MeanFlowBlock(nn.Module):
    """A DiT block (adaLN-Zero) with attention written out, so that forward-mode AD (the JVP) runs through it."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
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
        h = modulate(F.layer_norm(x, (d,), eps=1e-6), shift_msa, scale_msa)
        q, k, v = self.attn.qkv(h).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        a = (w @ v).transpose(1, 2).reshape(n, t, d)
        x = x + gate_msa[:, None] * self.attn.proj(a)
        h = modulate(F.layer_norm(x, (d,), eps=1e-6), shift_mlp, scale_mlp)
        return x + gate_mlp[:, None] * self.mlp.fc2(F.gelu(self.mlp.fc1(h), approximate="tanh"))


def embedder(d):
    m = nn.Module()
    m.mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
    return m


class MeanFlowDiT(nn.Module):
    """The `meanflow` kind under the alpha-Flow release's names: `noise_labels_embedder` gets t, and
    `noise_labels_next_embedder` the gap h = t - r; both see t raw in [0, 1] (no x1000); 4 output channels."""

    def __init__(self, latent=8, p=2, cin=4, d=192, depth=6, heads=3, classes=10):
        super().__init__()
        self.p, self.cin, self.g = p, cin, latent // p
        self.x_embedder = nn.Module()
        self.x_embedder.proj = nn.Conv2d(cin, d, p, stride=p)
        self.noise_labels_embedder = embedder(d)
        self.noise_labels_next_embedder = embedder(d)
        self.y_embedder = nn.Module()
        self.y_embedder.embedding_table = nn.Embedding(classes + 1, d)
        # A frozen parameter, as upstream stores it (the converter checks it against the fixed embedding).
        self.pos_embed = nn.Parameter(pos_embed_2d(d, self.g), requires_grad=False)
        self.blocks = nn.ModuleList([MeanFlowBlock(d, heads) for _ in range(depth)])
        self.final_layer = nn.Module()
        self.final_layer.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.final_layer.linear = nn.Linear(d, p * p * cin)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        for e in (self.noise_labels_embedder, self.noise_labels_next_embedder):
            nn.init.normal_(e.mlp[0].weight, std=0.02)
            nn.init.normal_(e.mlp[2].weight, std=0.02)
        for b in self.blocks:
            nn.init.zeros_(b.adaLN_modulation[-1].weight)
            nn.init.zeros_(b.adaLN_modulation[-1].bias)
        for m in (self.final_layer.adaLN_modulation[-1], self.final_layer.linear):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, z, t, h, y):
        n, d = z.shape[0], self.pos_embed.shape[-1]
        x = self.x_embedder.proj(z).flatten(2).transpose(1, 2) + self.pos_embed
        c = (self.noise_labels_embedder.mlp(timestep_embedding(t))
             + self.noise_labels_next_embedder.mlp(timestep_embedding(h))
             + self.y_embedder.embedding_table(y))
        for b in self.blocks:
            x = b(x, c)
        shift, scale = self.final_layer.adaLN_modulation(c).chunk(2, dim=1)
        x = self.final_layer.linear(modulate(F.layer_norm(x, (d,), eps=1e-6), shift, scale))
        p, g, co = self.p, self.g, self.cin
        x = x.reshape(n, g, g, p, p, co).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(n, co, g * p, g * p)


def sample_tr(n, flow_share, gen, end_share=0.0):
    """(t, r) with t >= r, each logit-normal(-0.4, 1); r = t for a share `flow_share` of the batch; t = 1 (the noise
    end, where every sample starts) for a share `end_share`, half of those with r = 0 (the one-step jump)."""
    a = torch.sigmoid(torch.randn(n, generator=gen) - 0.4)
    b = torch.sigmoid(torch.randn(n, generator=gen) - 0.4)
    t, r = torch.maximum(a, b), torch.minimum(a, b)
    u = torch.rand(n, generator=gen)
    r = torch.where(u < flow_share, t, r)
    end = u >= 1 - end_share
    t = torch.where(end, torch.ones_like(t), t)
    r = torch.where(end & (torch.rand(n, generator=gen) < 0.5), torch.zeros_like(r), r)
    return t, r


def meanflow_loss(net, x, e, y, t, r):
    """MeanFlow: ||u(z; t, t - r) - sg(v - (t - r) du/dt)||^2 with the adaptive weight."""
    tt, rr = t[:, None, None, None], r[:, None, None, None]
    z = (1 - tt) * x + tt * e
    v = e - x

    def fn(z, t, h):
        return net(z, t, h, y)

    u, dudt = torch.func.jvp(fn, (z, t, t - r), (v, torch.ones_like(t), torch.ones_like(t)))
    target = (v - (tt - rr) * dudt).detach()
    err = ((u - target) ** 2).flatten(1).sum(1)
    w = 1.0 / (err.detach() + 1e-3)
    return (w * err).mean(), (err / x[0].numel()).mean().item()


@torch.no_grad()
def one_step(net, e, y):
    n = e.shape[0]
    return e - net(e, torch.ones(n), torch.ones(n), y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pairs", type=int, default=10000)
    ap.add_argument("--teacher-steps", type=int, default=25)
    ap.add_argument("--teacher-cfg", type=float, default=4.0)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--lr-end", type=float, default=2e-5)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--flow-share", type=float, default=0.3)
    ap.add_argument("--end-share", type=float, default=0.3, help="share of the batch at t = 1 (half of it with r = 0)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--save-every", type=int, default=250, help="steps between checkpoints and snapshots")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    log = {"args": vars(args), "torch": torch.__version__, "threads": torch.get_num_threads(), "log": []}
    gen = torch.Generator().manual_seed(args.seed)

    teacher, tcfg, vae_scale = load_teacher()
    pairs_path = os.path.join(args.out, "pairs.pt")
    key = {k: getattr(args, k) for k in ("seed", "pairs", "teacher_steps", "teacher_cfg")}
    if os.path.exists(pairs_path) and torch.load(pairs_path)["key"] == key:
        pairs = torch.load(pairs_path)
        log["teacher_seconds"] = pairs["seconds"]
        print(f"reusing {pairs_path}", flush=True)
    else:
        # Chunks of 500 in a partial file, so that a stopped run resumes where it was (with any --pairs: the chunks'
        # noise is one stream).
        partial_path = pairs_path + ".partial"
        chunk_key = {k: v for k, v in key.items() if k != "pairs"}
        done = torch.load(partial_path) if os.path.exists(partial_path) else None
        if done is None or done["key"] != chunk_key:
            done = {"key": chunk_key, "e": [], "x": [], "y": [], "seconds": 0.0}
        for i in range(0, args.pairs, 500):
            n = min(500, args.pairs - i)
            e = torch.randn(n, 4, 8, 8, generator=gen)  # drawn for every chunk: the stream is the same on a resume
            if i < 500 * len(done["x"]):
                continue
            t0 = time.time()
            y = torch.arange(i, i + n) % 10
            done["x"].append(teacher_samples(teacher, e, y, args.teacher_steps, args.teacher_cfg))
            done["e"].append(e)
            done["y"].append(y)
            done["seconds"] += time.time() - t0
            torch.save(done, partial_path)
            print(f"teacher: {i + n}/{args.pairs} pairs ({done['seconds']:.0f} s)", flush=True)
        chunks = -(-args.pairs // 500)
        pairs = {"key": key, "e": torch.cat(done["e"][:chunks])[:args.pairs], "x": torch.cat(done["x"][:chunks])[:args.pairs],
                 "y": torch.cat(done["y"][:chunks])[:args.pairs], "seconds": done["seconds"]}
        torch.save(pairs, pairs_path)
        os.remove(partial_path)
        log["teacher_seconds"] = pairs["seconds"]

    # Per-element statistics of the VAE's raw latents (the DiT's latent is raw * scaling_factor).
    raw = pairs["x"].double() / vae_scale
    mean = raw.mean(0, keepdim=True)
    var = raw.var(0, keepdim=True)
    x_all = ((raw - mean) / torch.sqrt(var + 1e-16)).float()
    e_all, y_all = pairs["e"], pairs["y"]

    torch.manual_seed(args.seed + 1)
    heads = args.width // 64
    net = MeanFlowDiT(d=args.width, depth=args.depth, heads=heads)
    ema = MeanFlowDiT(d=args.width, depth=args.depth, heads=heads)
    ema.load_state_dict(net.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0)
    held = torch.arange(args.pairs - 500, args.pairs)  # the last 500 pairs: the one-step check
    n_train = args.pairs - 500
    # A checkpoint every --save-every steps: a stopped run resumes from it, and the snapshot written with it can be
    # tried while training goes on.
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    start, elapsed = 1, 0.0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        net.load_state_dict(ck["net"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
        start, elapsed, log["log"] = ck["step"] + 1, ck["seconds"], ck["log"]
        print(f"resuming at step {start}", flush=True)
    t0 = time.time() - elapsed
    run = [0.0, 0]
    for step in range(start, args.steps + 1):
        idx = torch.randint(0, n_train, (args.batch,), generator=gen)
        x, e, y = x_all[idx], e_all[idx], y_all[idx].clone()
        y[torch.rand(args.batch, generator=gen) < 0.1] = NULL
        t, r = sample_tr(args.batch, args.flow_share, gen, args.end_share)
        loss, mse = meanflow_loss(net, x, e, y, t, r)
        for grp in opt.param_groups:
            grp["lr"] = args.lr_end + 0.5 * (args.lr - args.lr_end) * (1 + math.cos(math.pi * (step - 1) / args.steps))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))  # warm-up: early snapshots are not mostly the initial weights
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters()):
                if p.requires_grad:
                    pe.mul_(decay).add_(p, alpha=1 - decay)
        run[0] += mse
        run[1] += 1
        if step % 50 == 0:
            print(f"step {step}: {(time.time() - t0) / step:.2f} s/step", flush=True)
        if step % args.save_every == 0 or step == args.steps:
            ema.eval()
            one = one_step(ema, e_all[held], y_all[held])
            one_err = ((one - x_all[held]) ** 2).mean().item()
            net.eval()
            with torch.no_grad():
                raw_err = ((one_step(net, e_all[held], y_all[held]) - x_all[held]) ** 2).mean().item()
            net.train()
            entry = {"step": step, "loss_per_element": run[0] / run[1], "one_step_mse_vs_teacher": one_err,
                     "one_step_mse_vs_teacher_raw": raw_err,
                     "seconds": time.time() - t0}
            print(json.dumps(entry), flush=True)
            log["log"].append(entry)
            run = [0.0, 0]
            log["train_seconds"] = time.time() - t0
            log["trained_steps"] = step
            save_snapshot(args, ema, mean, var, vae_scale, heads, log)
            torch.save({"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                        "step": step, "seconds": time.time() - t0, "log": log["log"]}, ckpt_path)
    print(f"done: teacher {log['teacher_seconds']:.0f} s, training {log['train_seconds']:.0f} s")


def save_snapshot(args, ema, mean, var, vae_scale, heads, log):
    """The EMA network as the α-Flow release saves a training snapshot, the class names and the log."""
    ema_sd = {"model." + k: v.detach().clone().contiguous() for k, v in ema.state_dict().items()}
    ema_sd["autoencoder_mean"] = mean
    ema_sd["autoencoder_var"] = var
    ema_sd["are_ldm_stats_inited"] = torch.tensor(True)
    cfg = {"model": {"arch": "meanflow", "dim": args.width, "num_blocks": args.depth, "num_heads": heads,
                     "patch_size": 2, "label_dropout": 0.1}, "dataset": "fashion-mnist (demo DiT samples)",
           "classes": CLASSES, "vae_scaling_factor": vae_scale}
    torch.save({"cfg": cfg, "ema": ema_sd}, os.path.join(args.out, "flowmap-demo.pt"))
    with open(os.path.join(args.out, "classes.json"), "w") as f:
        json.dump(CLASSES, f)
    with open(os.path.join(args.out, "log.json"), "w") as f:
        json.dump(log, f, indent=2)


if __name__ == "__main__":
    main()
