// The wasm build (www/lib/pkg: the module the page runs, built by scripts/build-web.sh) in Node on Dawn, Chrome's
// WebGPU implementation (npm `webgpu`): no browser, so it also runs where none can be installed (a lent GPU machine).
// Times, on the embedded demo model (models/demo, served over HTTP to the wasm's fetch as the page serves it):
//   - the DiT forward at batch 2 (one guided step), as the package's benchForward({ model });
//   - one whole image as the page makes it (WasmSampler.create + generate: sampler steps + VAE decode), the second of
//     two (the first also compiles the sampler's kernels);
//   - with --preset P: the forward of that paper preset with random weights (--res, default 256), and with
//     --image-steps "50:ddim,250:ddpm" one image of it per entry (random DiT and VAE weights).
// With --chromium, the same build's page in headless Chromium (the demo model's forward on bench.html?model=, one
// image on the page itself) in the same run, beside Dawn's figures.
// Usage: node tools/bench/dawn.mjs [--help | -h] [--json] [--steps 50] [--sampler ddim] [--cfg 4] [--class 3] [--seed 7]
//   [--repeat 5] [--preset S/2 [--res 256] [--image-steps 50:ddim,250:ddpm]] [--no-demo] [--save-rgba FILE]
//   [--chromium] [--dawn OPTION ...]
// --json prints exactly one JSON object on stdout. No adapter: one line on stderr, exit status 2.
// Here (no GPU): VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (SwiftShader); on a GPU, Vulkan as is.
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { adapterInfo, installDawn, NO_ADAPTER_HINT } from "./dawn-scope.mjs";
import { serve } from "../../tests/e2e/server.mjs";

const repo = path.resolve(import.meta.dirname, "../..");
/** The comment this file opens with. */
function usage() {
  const lines = fs.readFileSync(import.meta.filename, "utf8").split("\n");
  const end = lines.findIndex((l) => !l.startsWith("//"));
  return lines.slice(0, end).map((l) => l.replace(/^\/\/ ?/, "")).join("\n");
}
let a;
try {
  ({ values: a } = parseArgs({
    options: {
      help: { type: "boolean", short: "h", default: false },
      json: { type: "boolean", default: false },
      steps: { type: "string", default: "50" },
      sampler: { type: "string", default: "ddim" },
      cfg: { type: "string", default: "4" },
      class: { type: "string", default: "3" },
      seed: { type: "string", default: "7" },
      repeat: { type: "string", default: "5" },
      preset: { type: "string" },
      res: { type: "string", default: "256" },
      "image-steps": { type: "string" },
      "no-demo": { type: "boolean", default: false },
      "save-rgba": { type: "string" },
      chromium: { type: "boolean", default: false },
      dawn: { type: "string", multiple: true, default: [] },
    },
  }));
} catch (e) {
  console.error(`dawn.mjs: ${e.message} (node tools/bench/dawn.mjs --help lists the options)`);
  process.exit(1);
}
if (a.help) {
  console.log(usage());
  process.exit(0);
}
const say = (line) => {
  if (!a.json) console.log(line);
};
const pkg = path.join(repo, "www/lib/pkg");
if (!fs.existsSync(path.join(pkg, "dit_wasm_bg.wasm"))) {
  console.error("no wasm build at www/lib/pkg: run scripts/build-web.sh first");
  process.exit(1);
}

const { adapter } = await installDawn(a.dawn);
if (!adapter) {
  console.error(NO_ADAPTER_HINT);
  process.exit(2);
}
const { default: init, WasmSampler, benchForward, benchImage } = await import(path.join(pkg, "dit_wasm.js"));
await init({ module_or_path: fs.readFileSync(path.join(pkg, "dit_wasm_bg.wasm")) });

const result = {
  runtime: "dawn (npm webgpu " + JSON.parse(fs.readFileSync(path.join(repo, "node_modules/webgpu/package.json"))).version + ")",
  adapter: adapterInfo(adapter),
};
say(`Dawn: ${result.adapter.vendor} ${result.adapter.architecture} ${result.adapter.device} (${result.adapter.description})`);

const models = await serve(path.join(repo, "models"));
const demo = { model: `${models.url}/demo/dit`, vae: `${models.url}/demo/vae` };
const request = {
  classLabels: [Number(a.class)],
  cfgScale: Number(a.cfg),
  steps: Number(a.steps),
  sampler: a.sampler,
  seed: Number(a.seed),
};
try {
  if (!a["no-demo"]) {
    const fwd = await benchForward({ model: demo.model, repeat: Number(a.repeat) });
    const t0 = performance.now();
    const sampler = await WasmSampler.create({ ...demo, cache: "none" });
    const loadMs = performance.now() - t0;
    const info = sampler.info();
    const times = [];
    let out;
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      out = await sampler.generate(request);
      times.push(performance.now() - t);
    }
    const px = out.images[0];
    if (a["save-rgba"]) fs.writeFileSync(a["save-rgba"], px);
    sampler.free();
    Object.assign(result, {
      model: "demo (models/demo)",
      wgpu_adapter: info.adapter,
      ms_per_forward: fwd.bench.ms_per_forward,
      forward: { batch: fwd.batch, latent: fwd.latent, linear_path: fwd.linear_path, dispatches: fwd.bench.dispatches_per_forward },
      output_finite: fwd.output_finite,
      ...request,
      ms_per_image: times[1],
      ms_first_image: times[0],
      image: { width: out.width, height: out.height, nonblank: px.some((v, i) => i % 4 !== 3 && v !== px[0]) },
      load_ms: loadMs,
      pipelines_at_load: { count: info.pipelines.count, compile_ms: info.pipelines.compileMs, kernels: info.pipelines.kernels, kernel_ms: info.pipelines.kernelMs },
    });
    say(`demo model: forward (batch 2) ${fwd.bench.ms_per_forward.toFixed(2)} ms, output finite: ${fwd.output_finite}`);
    say(`  one ${out.width}x${out.height} image, ${a.steps} ${a.sampler} steps, guidance ${a.cfg}: ${times[1].toFixed(0)} ms (first: ${times[0].toFixed(0)} ms)`);
    say(`  load: ${loadMs.toFixed(0)} ms, ${info.pipelines.count} pipelines compiled (${info.pipelines.compileMs.toFixed(0)} ms creating them)`);
  }
  if (a.preset) {
    const res = Number(a.res);
    const fwd = await benchForward({ preset: a.preset, res, repeat: Number(a.repeat) });
    result.preset = { model: fwd.model, res, ms_per_forward: fwd.bench.ms_per_forward, output_finite: fwd.output_finite,
      linear_path: fwd.linear_path, gflops_per_s: fwd.bench.gflops_per_s };
    say(`DiT-${a.preset} at ${res} px, random weights: forward (batch 2) ${fwd.bench.ms_per_forward.toFixed(2)} ms, finite: ${fwd.output_finite}`);
    if (a["image-steps"]) {
      result.preset.images = [];
      for (const entry of a["image-steps"].split(",")) {
        const [steps, sampler = "ddim"] = entry.split(":");
        const r = (await benchImage({ preset: a.preset, res, steps: Number(steps), sampler })).generate_one_image;
        result.preset.images.push(r);
        say(`  one image, ${steps} ${sampler} steps, guidance 4, + VAE: ${r.seconds.toFixed(2)} s (first: ${r.seconds_first.toFixed(2)} s)`);
      }
    }
  }
} finally {
  models.close();
}

if (a.chromium) {
  result.chromium = await chromiumFigures();
  const c = result.chromium;
  say(`Chromium (same build, ${c.adapter}): forward ${c.ms_per_forward.toFixed(2)} ms, one image ${c.ms_per_image.toFixed(0)} ms`);
  if (result.ms_per_forward) {
    result.dawn_vs_chromium = { forward: result.ms_per_forward / c.ms_per_forward, image: result.ms_per_image / c.ms_per_image };
    say(`  Dawn / Chromium: forward ${result.dawn_vs_chromium.forward.toFixed(2)}x, image ${result.dawn_vs_chromium.image.toFixed(2)}x`);
  }
}
if (a.json) console.log(JSON.stringify(result));

/** The demo model's forward and one image, the same settings, in the same build's page (www/demo/dist) in Chromium. */
async function chromiumFigures() {
  const { chromium } = await import("playwright-core");
  const { ARGS, chromiumPath, generate, site, waitLoaded } = await import("../../tests/e2e/browser.mjs");
  const server = await serve(site);
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}/bench.html?model=${encodeURIComponent(`${server.url}/demo/dit`)}&repeat=${a.repeat}`);
    await page.waitForFunction(() => !document.querySelector("[data-testid=bench-result]").hidden, null, { timeout: 600_000 });
    const fwd = JSON.parse(await page.locator("[data-testid=bench-result]").textContent());
    if (fwd.error) throw new Error(`Chromium forward: ${fwd.error}: ${fwd.message}`);
    await page.goto(`${server.url}/?model=demo`);
    await waitLoaded(page);
    const adapterText = await page.locator("#adapter").textContent();
    const settings = { steps: Number(a.steps), sampler: a.sampler, seed: Number(a.seed), cfg: Number(a.cfg), classLabel: Number(a.class) };
    const times = [];
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      await generate(page, settings);
      times.push(performance.now() - t);
    }
    return { adapter: adapterText, ms_per_forward: fwd.bench.ms_per_forward, output_finite: fwd.output_finite,
      ms_per_image: times[1], ms_first_image: times[0] };
  } finally {
    await browser.close();
    server.close();
  }
}
