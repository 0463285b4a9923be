#!/usr/bin/env python3
"""Writes a full-size DiT-XL/2 pipeline repo in the exact layout of the official `facebook/DiT-XL-2-256` (or -512)
on the Hugging Face Hub, with random weights, for measuring loads where the real files cannot be downloaded:

  OUT/model_index.json, OUT/scheduler/scheduler_config.json
  OUT/transformer/config.json                legacy `"_class_name": "Transformer2DModel"`, `norm_type: "ada_norm_zero"`
  OUT/transformer/diffusion_pytorch_model.bin
                                             a torch.save zip in f32 (about 3.0 GB): diffusers' names, every one of
                                             the 28 blocks with its own identical copy of the timestep and class
                                             embedders (`transformer_blocks.N.norm1.emb.*`), as the real file has
  OUT/vae/config.json, OUT/vae/diffusion_pytorch_model.bin
                                             the sd-vae AutoencoderKL in f32 (about 335 MB), encoder included, the
                                             attention names of the diffusers version that wrote the files (0.12:
                                             `query`, `key`, `value`, `proj_attn`)

The zip and the pickle are those of tools/make_hub_fixtures.py (checked there against a real torch.save file), but
written entry by entry to disk: a storage's bytes are produced in 8 MiB chunks (CRC computed on the way, the data
descriptor after the data, as torch.save writes it), so the whole file is never in memory. The values are slices of
one pool of N(0, 0.02) f32 samples starting at a different place for each tensor (no numpy needed); the embedder
copies are byte-identical, as in the real file.
Only the standard library is used.
Usage: python3 tools/make_synthetic_hub.py OUT [--res 256|512]   (e.g. /tmp/hub-xl/facebook/DiT-XL-2-256)
"""
import argparse
import collections
import os
import random
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_hub_fixtures import ALIGN, dit_config, pipeline_files, state_dict_pickle, vae_encoder  # noqa: E402

CHUNK = 8 << 20
POOL_VALUES = 1 << 20  # 4 MiB of samples


class Pool:
    def __init__(self, seed=0):
        rng = random.Random(seed)
        raw = struct.pack("<%df" % POOL_VALUES, *(rng.gauss(0.0, 0.02) for _ in range(POOL_VALUES)))
        self.n = len(raw)
        self.twice = memoryview(raw + raw)


class Lazy:
    """A storage's bytes, made on demand: `len()` for the pickle, `chunks()` for the zip."""

    def __init__(self, pool, shape, seed):
        self.pool, self.shape, self.seed = pool, shape, seed
        n = 1
        for d in shape:
            n *= d
        self.nbytes = 4 * n

    def __len__(self):
        return self.nbytes

    def chunks(self):
        pos = (self.seed * 2654435761 % (self.pool.n // 4)) * 4
        left = self.nbytes
        while left:
            k = min(left, CHUNK, self.pool.n)
            if pos + k <= 2 * self.pool.n:
                yield self.pool.twice[pos:pos + k]
            else:
                yield bytes(self.pool.twice[pos:]) + bytes(self.pool.twice[:pos + k - 2 * self.pool.n])
            pos = (pos + k) % self.pool.n
            left -= k


def torch_zip_to(path, prefix, pkl, storages, serialization_id):
    """make_hub_fixtures.torch_zip, streamed to a file: data may be bytes or a Lazy."""
    entries = [(f"{prefix}/data.pkl", pkl), (f"{prefix}/byteorder", b"little")]
    entries += [(f"{prefix}/data/{k}", d) for k, d in storages]
    entries += [(f"{prefix}/version", b"3\n"), (f"{prefix}/.data/serialization_id", serialization_id)]
    central = bytearray()
    flag = 0x0808
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        off = 0
        for name, data in entries:
            nb = name.encode()
            offset = off
            assert offset < 0xFFFFFFFF, "zip64 entry offsets are not written here"
            pad = (-(offset + 30 + len(nb) + 4)) % ALIGN
            extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            head = struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, flag, 0, 0, 0, 0, 0, 0, len(nb), len(extra)) + nb + extra
            f.write(head)
            off += len(head)
            assert off % ALIGN == 0
            crc = 0
            for c in (data.chunks() if isinstance(data, Lazy) else [data]):
                crc = zlib.crc32(c, crc)
                f.write(c)
            n = len(data)
            off += n
            desc = struct.pack("<IIII", 0x08074B50, crc & 0xFFFFFFFF, n, n)
            f.write(desc)
            off += len(desc)
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, flag, 0, 0, 0, crc & 0xFFFFFFFF, n, n,
                                   len(nb), 0, 0, 0, 0, 0, offset) + nb
        cd_offset = off
        f.write(central)
        z64 = off + len(central)
        k = len(entries)
        f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x2D, 0, 0, k, k, len(central), cd_offset))
        f.write(struct.pack("<IIQI", 0x07064B50, 0, z64, 1))
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, k, k, len(central), cd_offset, 0))
    return os.path.getsize(path)


def dit_xl_tensors(pool, hidden=1152, depth=28, patch=2, classes=1000, out_ch=8, freq=256, mlp=4):
    """diffusers' Transformer2DModel (ada_norm_zero) state_dict() of DiT-XL/2: name -> (storage, shape, Lazy)."""
    t = collections.OrderedDict()
    seed = [0]

    def add(name, shape, s=None):
        seed[0] += 1
        t[name] = ("FloatStorage", shape, Lazy(pool, shape, seed[0] if s is None else s))

    add("pos_embed.proj.weight", [hidden, 4, patch, patch])
    add("pos_embed.proj.bias", [hidden])
    for i in range(depth):
        b = f"transformer_blocks.{i}."
        e = b + "norm1.emb."
        # The same seeds in every block: the copies are byte-identical.
        add(e + "timestep_embedder.linear_1.weight", [hidden, freq], 10_001)
        add(e + "timestep_embedder.linear_1.bias", [hidden], 10_002)
        add(e + "timestep_embedder.linear_2.weight", [hidden, hidden], 10_003)
        add(e + "timestep_embedder.linear_2.bias", [hidden], 10_004)
        add(e + "class_embedder.embedding_table.weight", [classes + 1, hidden], 10_005)
        add(b + "norm1.linear.weight", [6 * hidden, hidden])
        add(b + "norm1.linear.bias", [6 * hidden])
        for q in ("to_q", "to_k", "to_v", "to_out.0"):
            add(b + f"attn1.{q}.weight", [hidden, hidden])
            add(b + f"attn1.{q}.bias", [hidden])
        add(b + "ff.net.0.proj.weight", [mlp * hidden, hidden])
        add(b + "ff.net.0.proj.bias", [mlp * hidden])
        add(b + "ff.net.2.weight", [hidden, mlp * hidden])
        add(b + "ff.net.2.bias", [hidden])
    add("proj_out_1.weight", [2 * hidden, hidden])
    add("proj_out_1.bias", [2 * hidden])
    add("proj_out_2.weight", [patch * patch * out_ch, hidden])
    add("proj_out_2.bias", [patch * patch * out_ch])
    return t


VAE_CONFIG = {
    "_class_name": "AutoencoderKL",
    "_diffusers_version": "0.12.0.dev0",
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 256,
    "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--res", type=int, choices=(256, 512), default=256)
    args = ap.parse_args()
    t0 = time.time()
    pool = Pool()

    tcfg = dit_config(16, 72, 28, args.res // 8, 2, 1000, 8)
    tt = dit_xl_tensors(pool)
    tpkl, tst = state_dict_pickle(tt)
    vcfg = dict(VAE_CONFIG, sample_size=args.res)
    vt = collections.OrderedDict((k, ("FloatStorage", s, Lazy(pool, s, 50_000 + i)))
                                 for i, (k, s) in enumerate(vae_encoder(vcfg, decoder=True, legacy=True).items()))
    vpkl, vst = state_dict_pickle(vt)

    # The small files (configs) through the fixtures' writer; the two .bin are streamed over its placeholders.
    pipeline_files(args.out, tcfg, b"", vcfg, b"")
    tn = torch_zip_to(os.path.join(args.out, "transformer", "diffusion_pytorch_model.bin"), "archive", tpkl, tst,
                      b"1428379564027382741960517321846920917531")
    vn = torch_zip_to(os.path.join(args.out, "vae", "diffusion_pytorch_model.bin"), "archive", vpkl, vst,
                      b"0913375180446124719583316024559261820354")
    tp = sum(len(d) for _, _, d in tt.values()) // 4
    vp = sum(len(d) for _, _, d in vt.values()) // 4
    dup = sum(len(d) for k, (_, _, d) in tt.items() if ".norm1.emb." in k and not k.startswith("transformer_blocks.0."))
    print(f"wrote {args.out} in {time.time() - t0:.0f} s: transformer {tn} bytes ({len(tt)} tensors, "
          f"{tp / 1e6:.1f}M parameters, {dup} bytes of embedder copies in blocks 1..27), vae {vn} bytes "
          f"({len(vt)} tensors, {vp / 1e6:.1f}M parameters)")


if __name__ == "__main__":
    main()
