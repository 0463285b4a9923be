// The kernel benchmark page (bench.html): runs benchKernels from the package and shows the table, or with ?forward=P
// (a preset, random weights) or ?model=URL (a DiT) one forward, or with ?image=P (&arch=, &steps=, &sampler=) one
// whole image of a preset with random weights; the JSON goes into #result for tools/bench/*.mjs.
import { benchForward, benchImage, benchKernels, DitError, type BenchForwardOptions, type BenchImageOptions } from "dit-wasm";

const params = new URLSearchParams(location.search);
const status = document.getElementById("status")!;
const table = document.getElementById("table") as HTMLTableElement;
const result = document.getElementById("result")!;

const shapes = params
  .get("shapes")
  ?.split(",")
  .map((s) => s.split("x").map(Number) as [number, number, number]);
const repeat = params.has("repeat") ? Number(params.get("repeat")) : undefined;

/** One forward of a preset with random weights, or (`model`) of the DiT at that location. */
async function forward(preset: string | undefined, model?: string) {
  const t0 = performance.now();
  const res = params.has("res") ? Number(params.get("res")) : undefined;
  const batch = params.has("batch") ? Number(params.get("batch")) : undefined;
  const warmup = params.has("warmup") ? Number(params.get("warmup")) : undefined;
  // `limits=default`: a device with WebGPU's default limits only.
  const limits = (params.get("limits") ?? undefined) as BenchForwardOptions["limits"];
  const opts = { repeat, batch, warmup, limits };
  const r = await benchForward(model ? { model, ...opts } : { preset, res, ...opts });
  status.textContent = `${model ?? `DiT-${preset}`} forward, batch ${r.batch}: ${r.bench.ms_per_forward.toFixed(1)} ms (median), ` +
    `${r.bench.gflops_per_s.toFixed(2)} GFLOP/s, ${r.bench.dispatches_per_forward} dispatches; ` +
    `bench took ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  result.textContent = JSON.stringify(r);
}

/** One whole image of a preset with random weights (its steps, then the VAE), timed twice. */
async function image(preset: string) {
  const t0 = performance.now();
  const res = params.has("res") ? Number(params.get("res")) : undefined;
  const arch = (params.get("arch") ?? undefined) as BenchImageOptions["arch"];
  const steps = params.has("steps") ? Number(params.get("steps")) : undefined;
  const sampler = (params.get("sampler") ?? undefined) as BenchImageOptions["sampler"];
  const r = await benchImage({ preset, res, arch, steps, sampler });
  const g = r.generate_one_image;
  status.textContent = `${arch ?? "dit"} ${preset}: one image, ${g.steps} ${g.sampler} steps at guidance ${g.cfg} ` +
    `(${g.image_forwards} network calls) + VAE: ${g.seconds.toFixed(2)} s; bench took ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  result.textContent = JSON.stringify(r);
}

async function kernels() {
  const t0 = performance.now();
  const r = await benchKernels({ shapes, repeat });
  const body = table.tBodies[0];
  for (const shape of r.linear) {
    for (const k of shape.kernels) {
      const row = body.insertRow();
      for (const cell of [`${shape.m} x ${shape.k} x ${shape.n}`, k.kernel, k.ms.toFixed(2), k.gflops_per_s.toFixed(2),
        `${k.vs_register_tiled.toFixed(2)}x`]) {
        row.insertCell().textContent = cell;
      }
    }
  }
  table.hidden = false;
  status.textContent = `${r.adapter.name || "adapter"} (${r.adapter.f16_weights_path}), ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  result.textContent = JSON.stringify(r);
}

try {
  const preset = params.get("forward");
  const model = params.get("model");
  if (params.get("image")) await image(params.get("image")!);
  else if (preset || model) await forward(preset ?? undefined, model ?? undefined);
  else await kernels();
} catch (e) {
  const kind = e instanceof DitError ? e.kind : "error";
  status.textContent = `${kind}: ${(e as Error).message}`;
  result.textContent = JSON.stringify({ error: kind, message: (e as Error).message });
}
result.hidden = false;
