// Browser benchmark (npm run bench): the built pages in headless Chromium (WebGPU on SwiftShader here). Prints
// 1. the time to first image cold (download + upload + compile) and warm (weights from Cache Storage), and one image
//    with 50 DDIM steps and guidance 4 (the demo page);
// 2. each linear kernel on DiT-XL/2's layer shapes, side by side in one run (bench.html).
// Build first: scripts/build-site.sh.
// Usage: node tools/bench/browser.mjs [--json] [--only generate|kernels] [--shapes 512x1152x1152,...] [--repeat N]
// DIST=<dir> serves another build instead of www/demo/dist (to compare two builds back to back).
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../../tests/e2e/server.mjs";

const repo = path.resolve(import.meta.dirname, "../..");
const server = await serve(process.env.DIST ?? path.join(repo, "www/demo/dist"));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--no-sandbox",
    ...(process.env.CHROMIUM_ARGS ?? "").split(" ").filter(Boolean)] });
const context = await browser.newContext();

async function load() {
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(`${server.url}/?model=demo`); // the DiT demo: 50 guided DDIM steps
  await page.waitForFunction(() => !document.querySelector("[data-testid=generate]").disabled, null, { timeout: 600_000 });
  return { page, seconds: (Date.now() - t0) / 1000 };
}

async function generate(page, steps) {
  await page.fill("[data-testid=steps]", String(steps));
  await page.selectOption("[data-testid=sampler]", "ddim");
  await page.fill("[data-testid=cfg]", "4");
  const n = await page.locator("[data-testid=result]").count();
  const t0 = Date.now();
  await page.click("[data-testid=generate]");
  await page.waitForFunction((k) => document.querySelectorAll("[data-testid=result]").length > k, n, { timeout: 600_000 });
  const seconds = (Date.now() - t0) / 1000;
  const text = await page.locator("[data-testid=progress-text]").textContent();
  return { seconds, msPerStep: Number(text.match(/([\d.]+) ms\/step/)?.[1]) };
}

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const only = arg("--only");
const result = {};

if (only !== "kernels") {
const cold = await load();
const adapter = await cold.page.locator("#adapter").textContent();
const first = await generate(cold.page, 50);
const second = await generate(cold.page, 50);
await cold.page.close();
const warm = await load();
await warm.page.close();
Object.assign(result, {
  adapter,
  load_cold_seconds: cold.seconds,
  load_warm_seconds: warm.seconds,
  one_image_50_ddim_steps_guided_seconds: second.seconds,
  ms_per_step: second.msPerStep,
  first_image_seconds: first.seconds,
});
if (!process.argv.includes("--json")) {
  console.log(`browser bench on ${adapter}`);
  console.log(`  load, cold (download + upload + compile): ${result.load_cold_seconds.toFixed(1)} s`);
  console.log(`  load, warm (weights from Cache Storage):  ${result.load_warm_seconds.toFixed(1)} s`);
  console.log(`  one 32x32 image, 50 DDIM steps, guidance 4: ${result.one_image_50_ddim_steps_guided_seconds.toFixed(2)} s (${result.ms_per_step} ms/step)`);
}
}

if (only !== "generate") {
  const page = await context.newPage();
  const q = new URLSearchParams();
  if (arg("--shapes")) q.set("shapes", arg("--shapes"));
  if (arg("--repeat")) q.set("repeat", arg("--repeat"));
  await page.goto(`${server.url}/bench.html?${q}`);
  await page.waitForFunction(() => !document.querySelector("[data-testid=bench-result]").hidden, null, { timeout: 3_600_000 });
  const r = JSON.parse(await page.locator("[data-testid=bench-result]").textContent());
  await page.close();
  if (r.error) throw new Error(`kernel bench: ${r.error}: ${r.message}`);
  result.kernels = r;
  if (!process.argv.includes("--json")) {
    console.log(`linear kernels, ${r.adapter.name || "browser WebGPU adapter"} (fp16 weights: ${r.adapter.f16_weights_path}), one run`);
    console.log(`  ${"M x K x N".padEnd(20)}${"kernel".padEnd(32)}${"ms".padStart(10)}${"GFLOP/s".padStart(10)}${"vs register-tiled".padStart(20)}`);
    for (const s of r.linear) {
      for (const k of s.kernels) {
        console.log(`  ${`${s.m} x ${s.k} x ${s.n}`.padEnd(20)}${k.kernel.padEnd(32)}${k.ms.toFixed(2).padStart(10)}${k.gflops_per_s.toFixed(2).padStart(10)}${(k.vs_register_tiled.toFixed(2) + "x").padStart(20)}`);
      }
    }
  }
}
if (process.argv.includes("--json")) console.log(JSON.stringify(result));
await browser.close();
server.close();
