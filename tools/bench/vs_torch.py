#!/usr/bin/env python3
"""The same DiT forward in PyTorch and in `dit bench`, one run, and their ratio.

A guided sampling step is one forward at batch 2 (the class and the null class). PyTorch runs diffusers'
DiTTransformer2DModel configured to the release's semantics (tools/dit_keys.py), random weights, on the CPU in float32
with all threads (default) or on a CUDA GPU (--device cuda; --dtype float16 for the usual half-precision inference,
eager mode, each step synchronised); `dit bench` runs the same preset with random fp16 weights on its default adapter
(lavapipe on a machine without a GPU, the GPU's Vulkan driver on one with). With --kernels, DiT-XL/2's linear shapes
are timed too: torch.nn.functional.linear against `dit bench --kernels` (every wgpu kernel, same run).

Needs torch and diffusers (the tools virtualenv) and a built CLI (cargo build --release).
Usage: python tools/bench/vs_torch.py [--preset S/2] [--res 256] [--repeat 5] [--device cpu|cuda]
           [--dtype float32|float16] [--kernels] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from dit_keys import diffusers_dit  # noqa: E402

# Paper presets: depth, hidden size, heads (head dim = hidden / heads), patch.
PRESETS = {
    "S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16),
}
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeat):
    fn()  # warm-up
    fn()
    sync()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        runs.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(runs)


def torch_forward_ms(preset, res, batch, repeat, device, dtype):
    name, patch = preset.split("/")
    depth, hidden, heads = PRESETS[name]
    latent = res // 8
    model = diffusers_dit(heads, hidden // heads, depth, latent, int(patch), 1000).to(device, dtype)
    x = torch.randn(batch, 4, latent, latent, device=device, dtype=dtype)
    t = torch.full((batch,), 999, dtype=torch.long, device=device)
    y = torch.tensor([207, 1000] * (batch // 2) + [207] * (batch % 2), device=device)
    with torch.no_grad():
        return timed(lambda: model(x, timestep=t, class_labels=y), repeat)


def dit_bench(extra):
    exe = os.environ.get("DIT_BIN", os.path.join(REPO, "target", "release", "dit"))
    out = subprocess.run([exe, "bench", *extra, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="S/2")
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    ap.add_argument("--kernels", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    dev, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch_ms = torch_forward_ms(args.preset, args.res, args.batch, args.repeat, dev, dtype)
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    ours = dit_bench(["--preset", args.preset, "--random-weights", "--res", str(args.res), "--batch",
                            str(args.batch), "--repeat", str(args.repeat), "--no-baseline"])
    result = {
        "preset": args.preset, "res": args.res, "batch": args.batch,
        "torch": {"version": torch.__version__, "device": where, "dtype": args.dtype, "ms_per_forward": torch_ms},
        "dit_wasm": {"adapter": ours["adapter"]["name"], "ms_per_forward": ours["ms_per_forward"]},
        "ratio_ours_over_torch": ours["ms_per_forward"] / torch_ms,
    }
    if args.kernels:
        k = dit_bench(["--kernels", "--repeat", str(args.repeat)])
        rows = []
        for shape in k["linear"]:
            m, kk, n = shape["m"], shape["k"], shape["n"]
            a, w, b = (torch.randn(m, kk, device=dev, dtype=dtype), torch.randn(n, kk, device=dev, dtype=dtype) / kk ** 0.5,
                       torch.randn(n, device=dev, dtype=dtype))
            with torch.no_grad():
                tms = timed(lambda: torch.nn.functional.linear(a, w, b), args.repeat)
            best = min(shape["kernels"], key=lambda t: t["ms"])
            rows.append({"m": m, "k": kk, "n": n, "torch_ms": tms, "torch_gflops_per_s": 2 * m * kk * n / tms / 1e6,
                         "ours_best": best, "ours_all": shape["kernels"], "ratio_ours_over_torch": best["ms"] / tms})
        result["linear"] = rows
    if args.json:
        print(json.dumps(result))
        return
    print(f"DiT-{args.preset} at {args.res} px, batch {args.batch} (one guided step), same machine, one run:")
    print(f"  PyTorch {torch.__version__} {where}, {args.dtype}: {torch_ms:.1f} ms per forward")
    print(f"  dit-wasm on {result['dit_wasm']['adapter']}: {ours['ms_per_forward']:.1f} ms per forward")
    print(f"  ratio (dit-wasm / PyTorch): {result['ratio_ours_over_torch']:.2f}x")
    for r in result.get("linear", []):
        print(f"  linear {r['m']}x{r['k']}x{r['n']}: PyTorch {r['torch_ms']:.2f} ms ({r['torch_gflops_per_s']:.1f} GFLOP/s),"
              f" ours best {r['ours_best']['ms']:.2f} ms ({r['ours_best']['kernel']}, "
              f"{r['ours_best']['gflops_per_s']:.1f} GFLOP/s): {r['ratio_ours_over_torch']:.2f}x")


if __name__ == "__main__":
    main()
