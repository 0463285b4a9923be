#!/usr/bin/env python3
"""Writes tiny models in the exact layout of the official DiT repos on the Hugging Face Hub (facebook/DiT-XL-2-256,
see docs on the Hub layout: a diffusers DiTPipeline folder whose weights are `torch.save` pickles), under
tests/fixtures/hub/:

  DiT-tiny/                       the pipeline: the sampler-parity DiT (tests/fixtures/dit_p2_hd64.safetensors) and
    model_index.json              the small VAE (tests/fixtures/vae_small), so the parity references apply to it
    scheduler/scheduler_config.json
    transformer/config.json       legacy `"_class_name": "Transformer2DModel"`, `norm_type: "ada_norm_zero"`
    transformer/diffusion_pytorch_model.bin
                                  diffusers' names in f32, every block with its own identical copy of the timestep
                                  and class embedders (`transformer_blocks.N.norm1.emb.*`), as the real file has
    vae/config.json
    vae/diffusion_pytorch_model.bin
                                  the AutoencoderKL in f32, with an encoder (never read: its values are a pattern)
  PixArt-tiny/                    another architecture: a PixArtTransformer2DModel (`norm_type: "ada_norm_single"`);
                                  a loader must name it and refuse it from its config alone
  DiT-truncated/                  DiT-tiny's pipeline files with the transformer .bin cut short
  DiT-evil/                       DiT-tiny's pipeline files with a transformer .bin whose pickle names `os.system`

The error repos hold no vae/ weights (vae/config.json only): the transformer fails first.

torch is not needed: the zip is written here byte for byte as torch.save (PyTorch's miniz writer) lays it out, and
checked against tests/fixtures/dit_formats/official.pt (written by real torch.save): entry order and names, stored
(uncompressed) entries with the data-descriptor flag, local extra fields padding each entry's data to 64 bytes, the
zip64 end records. The pickle is protocol 2 from Python's pickle with a persistent id per storage, the globals
`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage` and `collections.OrderedDict` named as torch names them;
the state dict is an OrderedDict with `_metadata`, as `module.state_dict()` returns it.
Only the standard library is used. Usage: python3 tools/make_hub_fixtures.py [--out tests/fixtures/hub]
"""
import argparse
import collections
import json
import os
import pickle
import struct
import sys
import types
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")
ALIGN = 64


# ---------------------------------------------------------------------------------------------------------------------
# safetensors in (stdlib only)

def read_safetensors(path):
    """name -> (dtype, shape, raw little-endian bytes), in file order."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = collections.OrderedDict()
    for k, v in sorted(((k, v) for k, v in header.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"]):
        s, e = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], b[8 + n + s:8 + n + e])
    return out


def to_f32(dtype, raw):
    """Raw F16 / F32 little-endian bytes -> F32 bytes (f16 values are exact in f32)."""
    if dtype == "F32":
        return raw
    assert dtype == "F16", dtype
    vals = struct.unpack("<%de" % (len(raw) // 2), raw)
    return struct.pack("<%df" % len(vals), *vals)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


# ---------------------------------------------------------------------------------------------------------------------
# torch.save, written by hand

def fake_torch():
    """Stand-ins that Python's pickle names as torch does: GLOBAL `torch._utils _rebuild_tensor_v2`, `torch
    FloatStorage`. Nothing here is ever unpickled by Python."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise RuntimeError("never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for name in ("FloatStorage", "HalfStorage"):
        cls = type(name, (), {"__module__": "torch"})
        cls.__qualname__ = name
        setattr(torch, name, cls)
    sys.modules.setdefault("torch", torch)
    sys.modules.setdefault("torch._utils", utils)
    return sys.modules["torch"]


TORCH = fake_torch()


class Storage:
    def __init__(self, key, dtype, data):
        self.key, self.dtype, self.data = key, dtype, data


class Tensor:
    """Pickles as torch.Tensor does: _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)."""

    def __init__(self, storage, shape):
        self.storage, self.shape = storage, list(shape)

    def __reduce_ex__(self, proto):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (TORCH._utils._rebuild_tensor_v2,
                (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            size = {"FloatStorage": 4, "HalfStorage": 2}[obj.dtype]
            return ("storage", getattr(TORCH, obj.dtype), obj.key, "cpu", len(obj.data) // size)
        return None


def state_dict_pickle(tensors, evil=False):
    """tensors: OrderedDict name -> (storage dtype, shape, bytes). Returns (data.pkl bytes, [(key, bytes)])."""
    import io
    sd = collections.OrderedDict()
    storages = []
    for name, (dtype, shape, data) in tensors.items():
        st = Storage(str(len(storages)), dtype, data)
        storages.append(st)
        sd[name] = Tensor(st, shape)
    # module.state_dict() carries `_metadata`: every module's prefix -> {"version": 1}.
    prefixes = collections.OrderedDict([("", None)])
    for name in tensors:
        parts = name.split(".")[:-1]
        for i in range(1, len(parts) + 1):
            prefixes[".".join(parts[:i])] = None
    sd._metadata = collections.OrderedDict((p, {"version": 1}) for p in prefixes)
    buf = io.BytesIO()
    if evil:
        # A pickle whose first object calls os.system: a safe reader must refuse the global before anything else.
        buf.write(b"\x80\x02cos\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.")
    else:
        TorchPickler(buf, protocol=2).dump(sd)
    return buf.getvalue(), [(s.key, s.data) for s in storages]


def torch_zip(prefix, pkl, storages, serialization_id):
    """The bytes of torch.save's zip (PyTorch's miniz writer): stored entries, each data start aligned to 64 bytes
    by an `FB` extra field in its local header, CRC and sizes in a data descriptor after the data (flag bit 3, and
    bit 11 for UTF-8 names), version and time fields zero, zip64 end records always written."""
    entries = [(f"{prefix}/data.pkl", pkl), (f"{prefix}/byteorder", b"little")]
    entries += [(f"{prefix}/data/{k}", d) for k, d in storages]
    entries += [(f"{prefix}/version", b"3\n"), (f"{prefix}/.data/serialization_id", serialization_id)]
    out = bytearray()
    central = bytearray()
    flag = 0x0808
    for name, data in entries:
        nb = name.encode()
        offset = len(out)
        pad = (-(offset + 30 + len(nb) + 4)) % ALIGN
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        crc = zlib.crc32(data) & 0xFFFFFFFF
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, flag, 0, 0, 0, 0, 0, 0, len(nb), len(extra)) + nb + extra
        assert len(out) % ALIGN == 0
        out += data
        out += struct.pack("<IIII", 0x08074B50, crc, len(data), len(data))
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, flag, 0, 0, 0, crc, len(data), len(data),
                               len(nb), 0, 0, 0, 0, 0, offset) + nb
    cd_offset = len(out)
    out += central
    z64 = len(out)
    n = len(entries)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x2D, 0, 0, n, n, len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset, 0)
    return bytes(out)


def zip_structure(b):
    """(entry names without the top folder, local flags, data alignments, extra ids, has zip64 end) of a zip."""
    eocd = b.rfind(b"PK\x05\x06")
    n, cd_size, cd_off = struct.unpack("<HII", b[eocd + 10:eocd + 20])
    names, flags, aligned, extras = [], set(), set(), set()
    p = cd_off
    for _ in range(n):
        nl, el, cl = struct.unpack("<HHH", b[p + 28:p + 34])
        lo = struct.unpack("<I", b[p + 42:p + 46])[0]
        name = b[p + 46:p + 46 + nl].decode()
        lnl, lel = struct.unpack("<HH", b[lo + 26:lo + 30])
        (lflag, method) = struct.unpack("<HH", b[lo + 6:lo + 10])
        flags.add((lflag, method))
        extras.add(b[lo + 30 + lnl:lo + 32 + lnl])
        aligned.add((lo + 30 + lnl + lel) % ALIGN)
        names.append(name.split("/", 1)[1])
        p += 46 + nl + el + cl
    return names, flags, aligned, extras, b.rfind(b"PK\x06\x06") >= 0 and b.rfind(b"PK\x06\x07") >= 0


def check_against_torch(ours):
    """Our zip has the structure of a real torch.save file (official.pt); torch 2.5+ adds two metadata entries
    (.format_version, .storage_alignment) that the older torch of the Hub's files did not write."""
    ref = open(os.path.join(FIXTURES, "dit_formats", "official.pt"), "rb").read()
    rn, rf, ra, re_, rz = zip_structure(ref)
    on, of, oa, oe, oz = zip_structure(ours)
    newer = {".format_version", ".storage_alignment"}
    rn = [n for n in rn if n not in newer]
    strip = lambda names: [("data/N" if n.startswith("data/") else n) for n in names]
    dedup = lambda names: [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]
    assert dedup(strip(rn)) == dedup(strip(on)), (dedup(strip(rn)), dedup(strip(on)))
    assert rf == of == {(0x0808, 0)}, (rf, of)
    assert ra == oa == {0}, (ra, oa)
    assert re_ == oe == {b"FB"}, (re_, oe)
    assert rz and oz
    # The reference's pickle names its globals as ours does.
    import zipfile
    z = zipfile.ZipFile(os.path.join(FIXTURES, "dit_formats", "official.pt"))
    pkl = z.read(z.namelist()[0])
    for g in (b"ctorch._utils\n_rebuild_tensor_v2\n", b"ccollections\nOrderedDict\n", b"X\x07\x00\x00\x00storage"):
        assert g in pkl, g
    # And Python's own zip reader takes ours, CRCs included.
    import io
    zz = zipfile.ZipFile(io.BytesIO(ours))
    assert zz.testzip() is None


# ---------------------------------------------------------------------------------------------------------------------
# the models

def dit_to_diffusers(w):
    """Release names -> diffusers' Transformer2DModel names in `state_dict()` order; every block gets its copy of the
    embedders, qkv is split into q, k and v. w: name -> (shape, f32 bytes)."""
    depth = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("blocks."))
    d = collections.OrderedDict()
    d["pos_embed.proj.weight"] = w["x_embedder.proj.weight"]
    d["pos_embed.proj.bias"] = w["x_embedder.proj.bias"]
    for i in range(depth):
        b, o = f"transformer_blocks.{i}.", f"blocks.{i}."
        e = b + "norm1.emb."
        for p in ("weight", "bias"):
            d[e + f"timestep_embedder.linear_1.{p}"] = w[f"t_embedder.mlp.0.{p}"]
        for p in ("weight", "bias"):
            d[e + f"timestep_embedder.linear_2.{p}"] = w[f"t_embedder.mlp.2.{p}"]
        d[e + "class_embedder.embedding_table.weight"] = w["y_embedder.embedding_table.weight"]
        for p in ("weight", "bias"):
            d[b + f"norm1.linear.{p}"] = w[o + f"adaLN_modulation.1.{p}"]
        for j, q in enumerate(("to_q", "to_k", "to_v")):
            for p in ("weight", "bias"):
                shape, raw = w[o + f"attn.qkv.{p}"]
                part = len(raw) // 3
                d[b + f"attn1.{q}.{p}"] = ([shape[0] // 3] + shape[1:], raw[j * part:(j + 1) * part])
        for p in ("weight", "bias"):
            d[b + f"attn1.to_out.0.{p}"] = w[o + f"attn.proj.{p}"]
        for p in ("weight", "bias"):
            d[b + f"ff.net.0.proj.{p}"] = w[o + f"mlp.fc1.{p}"]
        for p in ("weight", "bias"):
            d[b + f"ff.net.2.{p}"] = w[o + f"mlp.fc2.{p}"]
    for p in ("weight", "bias"):
        d[f"proj_out_1.{p}"] = w[f"final_layer.adaLN_modulation.1.{p}"]
    for p in ("weight", "bias"):
        d[f"proj_out_2.{p}"] = w[f"final_layer.linear.{p}"]
    return d, depth


def pattern(shape, seed):
    """Deterministic f32 values for weights that are never read (the VAE encoder): exact in fp16, compress well."""
    n = numel(shape)
    return struct.pack("<%df" % n, *(((i * 7 + seed) % 17 - 8) / 64.0 for i in range(n)))


def vae_encoder(cfg, decoder=False, legacy=False):
    """The AutoencoderKL encoder tensors of a diffusers config, in state_dict() order (encoder, then quant_conv); with
    `decoder`, all of its tensors (encoder, decoder, quant_conv, post_quant_conv); with `legacy`, the mid blocks'
    attention names of diffusers 0.12 (`query`, `key`, `value`, `proj_attn`) instead of `to_q`... `to_out.0`."""
    ch, lpb, lat = cfg["block_out_channels"], cfg["layers_per_block"], cfg["latent_channels"]
    t = collections.OrderedDict()
    conv = lambda n, o, i, k: t.update({f"{n}.weight": [o, i, k, k], f"{n}.bias": [o]})
    norm = lambda n, c: t.update({f"{n}.weight": [c], f"{n}.bias": [c]})
    lin = lambda n, o, i: t.update({f"{n}.weight": [o, i], f"{n}.bias": [o]})

    def resnet(n, i, o):
        norm(f"{n}.norm1", i)
        conv(f"{n}.conv1", o, i, 3)
        norm(f"{n}.norm2", o)
        conv(f"{n}.conv2", o, o, 3)
        if i != o:
            conv(f"{n}.conv_shortcut", o, i, 1)

    def mid(n, c):
        norm(f"{n}.attentions.0.group_norm", c)
        for q in ("query", "key", "value", "proj_attn") if legacy else ("to_q", "to_k", "to_v", "to_out.0"):
            lin(f"{n}.attentions.0.{q}", c, c)
        for r in range(2):
            resnet(f"{n}.resnets.{r}", c, c)

    conv("encoder.conv_in", ch[0], cfg["in_channels"], 3)
    prev = ch[0]
    for b, c in enumerate(ch):
        for r in range(lpb):
            resnet(f"encoder.down_blocks.{b}.resnets.{r}", prev if r == 0 else c, c)
        prev = c
        if b != len(ch) - 1:
            conv(f"encoder.down_blocks.{b}.downsamplers.0.conv", c, c, 3)
    c = ch[-1]
    mid("encoder.mid_block", c)
    norm("encoder.conv_norm_out", c)
    conv("encoder.conv_out", 2 * lat, c, 3)
    if decoder:
        rev = list(reversed(ch))
        conv("decoder.conv_in", rev[0], lat, 3)
        prev = rev[0]
        for b, c in enumerate(rev):
            for r in range(lpb + 1):
                resnet(f"decoder.up_blocks.{b}.resnets.{r}", prev if r == 0 else c, c)
            prev = c
            if b != len(rev) - 1:
                conv(f"decoder.up_blocks.{b}.upsamplers.0.conv", c, c, 3)
        mid("decoder.mid_block", rev[0])
        norm("decoder.conv_norm_out", rev[-1])
        conv("decoder.conv_out", cfg["out_channels"], rev[-1], 3)
    conv("quant_conv", 2 * lat, 2 * lat, 1)
    if decoder:
        conv("post_quant_conv", lat, lat, 1)
    return t


def sincos_pos_embed(dim, grid):
    """DiT's get_2d_sincos_pos_embed(dim, grid) as f32 bytes ([grid*grid, dim]; float64 math, then f32): half the
    channels embed the column (w) index, half the row (h) index, each as [sin(pos * omega), cos(pos * omega)]."""
    import math
    quarter = dim // 4
    omega = [1.0 / 10000 ** (k / quarter) for k in range(quarter)]

    def one(pos):
        return [math.sin(pos * o) for o in omega] + [math.cos(pos * o) for o in omega]
    vals = []
    for i in range(grid):
        for j in range(grid):
            vals += one(j) + one(i)
    return struct.pack("<%df" % len(vals), *vals)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def dump(obj):
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def pipeline_files(root, transformer_cfg, transformer_bin, vae_cfg, vae_bin, pipeline="DiTPipeline",
                   transformer_class="Transformer2DModel"):
    write(os.path.join(root, "model_index.json"), dump({
        "_class_name": pipeline,
        "_diffusers_version": "0.12.0.dev0",
        "id2label": {str(i): f"class {i}" for i in range(1000)} if pipeline == "DiTPipeline" else None,
        "scheduler": ["diffusers", "KarrasDiffusionSchedulers" if pipeline == "DiTPipeline" else "DPMSolverMultistepScheduler"],
        "transformer": ["diffusers", transformer_class],
        "vae": ["diffusers", "AutoencoderKL"],
    } if pipeline == "DiTPipeline" else {
        "_class_name": pipeline,
        "_diffusers_version": "0.25.0",
        "scheduler": ["diffusers", "DPMSolverMultistepScheduler"],
        "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "T5Tokenizer"],
        "transformer": ["diffusers", transformer_class],
        "vae": ["diffusers", "AutoencoderKL"],
    }))
    write(os.path.join(root, "scheduler", "scheduler_config.json"), dump({
        "_class_name": "DDIMScheduler",
        "_diffusers_version": "0.12.0.dev0",
        "beta_end": 0.02,
        "beta_schedule": "linear",
        "beta_start": 0.0001,
        "clip_sample": False,
        "num_train_timesteps": 1000,
        "prediction_type": "epsilon",
        "set_alpha_to_one": True,
        "steps_offset": 0,
        "trained_betas": None,
    }))
    write(os.path.join(root, "transformer", "config.json"), dump(transformer_cfg))
    write(os.path.join(root, "transformer", "diffusion_pytorch_model.bin"), transformer_bin)
    write(os.path.join(root, "vae", "config.json"), dump(vae_cfg))
    if vae_bin is not None:
        write(os.path.join(root, "vae", "diffusion_pytorch_model.bin"), vae_bin)


def dit_config(heads, head_dim, depth, sample, patch, classes, out_channels, class_name="Transformer2DModel"):
    return {
        "_class_name": class_name,
        "_diffusers_version": "0.12.0.dev0",
        "activation_fn": "gelu-approximate",
        "attention_bias": True,
        "attention_head_dim": head_dim,
        "cross_attention_dim": None,
        "dropout": 0.0,
        "in_channels": 4,
        "norm_elementwise_affine": False,
        "norm_num_groups": 32,
        "norm_type": "ada_norm_zero",
        "num_attention_heads": heads,
        "num_embeds_ada_norm": classes,
        "num_layers": depth,
        "num_vector_embeds": None,
        "only_cross_attention": False,
        "out_channels": out_channels,
        "patch_size": patch,
        "sample_size": sample,
        "upcast_attention": False,
        "use_linear_projection": False,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(FIXTURES, "hub"))
    args = ap.parse_args()

    # The sampler-parity DiT: heads 2 (head dim 64), latent 8, 1000 classes, learned sigma.
    w = {k: (shape, to_f32(dt, raw)) for k, (dt, shape, raw) in
         read_safetensors(os.path.join(FIXTURES, "dit_p2_hd64.safetensors")).items()}
    d, depth = dit_to_diffusers(w)
    hidden = w["x_embedder.proj.weight"][0][0]
    patch = w["x_embedder.proj.weight"][0][2]
    heads = 2
    classes = w["y_embedder.embedding_table.weight"][0][0] - 1
    out_ch = w["final_layer.linear.weight"][0][0] // (patch * patch)
    tcfg = dit_config(heads, hidden // heads, depth, 8, patch, classes, out_ch)
    pkl, storages = state_dict_pickle(collections.OrderedDict((k, ("FloatStorage", s, b)) for k, (s, b) in d.items()))
    tbin = torch_zip("archive", pkl, storages, b"1428379564027382741960517321846920917531")
    check_against_torch(tbin)

    vae_dir = os.path.join(FIXTURES, "vae_small")
    vcfg = json.load(open(os.path.join(vae_dir, "config.json")))
    vw = read_safetensors(os.path.join(vae_dir, "diffusion_pytorch_model.safetensors"))
    vt = collections.OrderedDict()
    for i, (k, shape) in enumerate(vae_encoder(vcfg).items()):
        vt[k] = ("FloatStorage", shape, pattern(shape, i))
    for k, (dt, shape, raw) in vw.items():
        if k.startswith("quant_conv."):
            continue  # written with the encoder, in state_dict() order
        vt[k] = ("FloatStorage", shape, to_f32(dt, raw))
    # state_dict() order: encoder, decoder, quant_conv, post_quant_conv.
    order = [k for k in vt if k.startswith("encoder.")] + [k for k in vt if k.startswith("decoder.")] + \
        [k for k in vt if k.startswith("quant_conv.")] + [k for k in vt if k.startswith("post_quant_conv.")]
    vt = collections.OrderedDict((k, vt[k]) for k in order)
    vpkl, vst = state_dict_pickle(vt)
    vbin = torch_zip("archive", vpkl, vst, b"0913375180446124719583316024559261820354")
    check_against_torch(vbin)
    vcfg = dict(vcfg, _diffusers_version="0.12.0.dev0", act_fn="silu", force_upcast=True,
                down_block_types=["DownEncoderBlock2D"] * len(vcfg["block_out_channels"]),
                up_block_types=["UpDecoderBlock2D"] * len(vcfg["block_out_channels"]))

    out = args.out
    pipeline_files(os.path.join(out, "DiT-tiny"), tcfg, tbin, vcfg, vbin)

    # The error repos: pipeline files whose transformer fails; vae/ has its config only.
    cut = tbin[:200_000]  # the start of the real file: local headers, data.pkl, the first storages
    pipeline_files(os.path.join(out, "DiT-truncated"), tcfg, cut, vcfg, None)
    small = collections.OrderedDict([("pos_embed.proj.bias", ("FloatStorage", [hidden], w["x_embedder.proj.bias"][1]))])
    epkl, est = state_dict_pickle(small, evil=True)
    pipeline_files(os.path.join(out, "DiT-evil"), tcfg, torch_zip("archive", epkl, est, b"0" * 40), vcfg, None)

    pcfg = {
        "_class_name": "PixArtTransformer2DModel",
        "_diffusers_version": "0.25.0",
        "activation_fn": "gelu-approximate",
        "attention_bias": True,
        "attention_head_dim": 64,
        "caption_channels": 4096,
        "cross_attention_dim": 128,
        "in_channels": 4,
        "norm_elementwise_affine": False,
        "norm_eps": 1e-6,
        "norm_type": "ada_norm_single",
        "num_attention_heads": 2,
        "num_embeds_ada_norm": 1000,
        "num_layers": 1,
        "out_channels": 8,
        "patch_size": 2,
        "sample_size": 8,
        "use_additional_conditions": False,
    }
    ppkl, pst = state_dict_pickle(collections.OrderedDict([
        ("pos_embed.proj.weight", ("FloatStorage", [128, 4, 2, 2], pattern([128, 4, 2, 2], 1))),
        ("pos_embed.proj.bias", ("FloatStorage", [128], pattern([128], 2))),
        ("adaln_single.linear.bias", ("FloatStorage", [768], pattern([768], 3))),
    ]))
    pipeline_files(os.path.join(out, "PixArt-tiny"), pcfg, torch_zip("archive", ppkl, pst, b"7" * 40), vcfg, None,
                   pipeline="PixArtAlphaPipeline", transformer_class="PixArtTransformer2DModel")

    # The SiT release's layout (nyu-visionx/SiT-collections): `SiT-<size>-<patch>-<res>.pt` files at the repo root,
    # torch.save'd state dicts of the SiT module (DiT's names, in state_dict() order), f32. The network is the
    # sampler-parity DiT's (heads 2); used as a SiT it is a velocity model (same weights, another time input).
    # pos_embed is a state_dict() entry (a frozen parameter): the fixed 2D sin-cos table in f32, as the release holds
    # it (the parity file keeps an f16 copy, too coarse for the loader's check).
    pshape = w["pos_embed"][0]
    sit = collections.OrderedDict([("pos_embed", (pshape, sincos_pos_embed(pshape[-1], int(round(pshape[1] ** 0.5)))))])
    for k in ["x_embedder.proj.weight", "x_embedder.proj.bias", "t_embedder.mlp.0.weight", "t_embedder.mlp.0.bias",
              "t_embedder.mlp.2.weight", "t_embedder.mlp.2.bias", "y_embedder.embedding_table.weight"]:
        sit[k] = w[k]
    for i in range(depth):
        for m in ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "adaLN_modulation.1"]:
            for t in ["weight", "bias"]:
                sit[f"blocks.{i}.{m}.{t}"] = w[f"blocks.{i}.{m}.{t}"]
    for m in ["final_layer.linear", "final_layer.adaLN_modulation.1"]:
        for t in ["weight", "bias"]:
            sit[f"{m}.{t}"] = w[f"{m}.{t}"]
    assert len(sit) == len(w), sorted(set(w) - set(sit))
    spkl, sst = state_dict_pickle(collections.OrderedDict((k, ("FloatStorage", s, b)) for k, (s, b) in sit.items()))
    sbin = torch_zip("archive", spkl, sst, b"2718281828459045235360287471352662497757")
    check_against_torch(sbin)
    write(os.path.join(out, "SiT-collections", "SiT-tiny-2-64.pt"), sbin)

    # The layout of stabilityai/sd-vae-ft-ema: config.json and diffusion_pytorch_model.safetensors at the root.
    # The weights are tests/fixtures/vae_small's, byte for byte.
    write(os.path.join(out, "sd-vae-ft-ema", "config.json"), dump(vcfg))
    write(os.path.join(out, "sd-vae-ft-ema", "diffusion_pytorch_model.safetensors"),
          open(os.path.join(vae_dir, "diffusion_pytorch_model.safetensors"), "rb").read())

    total = 0
    for dp, _, fs in os.walk(out):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    print(f"wrote {out}: DiT-tiny (depth {depth}, hidden {hidden}, {len(d)} transformer tensors, "
          f"{len(tbin)} + {len(vbin)} bytes of .bin), DiT-truncated, DiT-evil, PixArt-tiny, SiT-collections ({len(sbin)} "
          f"bytes), sd-vae-ft-ema; {total} bytes in all")


if __name__ == "__main__":
    main()
