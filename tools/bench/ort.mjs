// The same DiT forward in headless Chromium on two runtimes, same adapter, one run: onnxruntime-web's WebGPU
// execution provider on the model exported to ONNX (tools/bench/ort_export.py, float32), and dit-wasm
// (bench.html?forward=..., random fp16 weights). Prints both medians and the ratio.
// Optional, not part of the product or the tests: it installs onnxruntime-web into tools/bench/ort/node_modules and
// needs the tools virtualenv (torch, diffusers, onnx) for the export, and the built site (scripts/build-site.sh).
// Usage: node tools/bench/ort.mjs [--preset S/2] [--res 256] [--repeat 5] [--python /path/to/python] [--json]
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../../tests/e2e/server.mjs";

const repo = path.resolve(import.meta.dirname, "../..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const preset = arg("--preset", "S/2");
const res = Number(arg("--res", "256"));
const repeat = Number(arg("--repeat", "5"));
const python = arg("--python", process.env.PYTHON ?? "python3");
const tag = `dit-${preset.replace("/", "")}-${res}`;

const ortDir = path.join(repo, "tools/bench/ort");
if (!fs.existsSync(path.join(ortDir, "node_modules/onnxruntime-web/dist"))) {
  execFileSync("npm", ["install", "--no-audit", "--no-fund"], { cwd: ortDir, stdio: "inherit" });
}
const site = path.join(repo, "target/bench", `ort-site-${tag}`);
const onnx = path.join(repo, "target/bench", `${tag}.onnx`);
if (!fs.existsSync(onnx)) {
  execFileSync(python, [path.join(repo, "tools/bench/ort_export.py"), "--preset", preset, "--res", String(res), "--out", onnx], { stdio: "inherit" });
}
fs.mkdirSync(site, { recursive: true });
for (const [name, target] of [["ort.html", path.join(ortDir, "ort.html")], ["model.onnx", onnx], ["ort", path.join(ortDir, "node_modules/onnxruntime-web/dist")]]) {
  fs.rmSync(path.join(site, name), { force: true, recursive: true });
  fs.symlinkSync(target, path.join(site, name));
}
const dist = path.join(repo, "www/demo/dist");
if (!fs.existsSync(path.join(dist, "bench.html"))) throw new Error("build the site first: scripts/build-site.sh");

const ortServer = await serve(site);
const ourServer = await serve(dist);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--no-sandbox"] });
const context = await browser.newContext();

async function result(url) {
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && console.error("page:", m.text()));
  await page.goto(url);
  await page.waitForFunction(() => !document.querySelector("#result").hidden, null, { timeout: 3_600_000 });
  const r = JSON.parse(await page.locator("#result").textContent());
  await page.close();
  if (r.error) throw new Error(`${url}: ${r.error} ${r.message ?? ""}`);
  return r;
}

const latent = res / 8;
const ort = await result(`${ortServer.url}/ort.html?repeat=${repeat}&batch=2&latent=${latent}`);
const ours = await result(`${ourServer.url}/bench.html?forward=${encodeURIComponent(preset)}&res=${res}&repeat=${repeat}`);
const out = {
  model: `DiT-${preset}`, res, batch: 2,
  onnxruntime_web: { version: ort.ort_version, ms_per_forward: ort.ms_per_forward, ms_runs: ort.ms_runs, output_finite: ort.output_finite },
  dit_wasm: { ms_per_forward: ours.bench.ms_per_forward, linear_path: ours.linear_path, adapter: ours.bench.adapter },
  ratio_dit_wasm_over_ort: ours.bench.ms_per_forward / ort.ms_per_forward,
};
if (process.argv.includes("--json")) console.log(JSON.stringify(out));
else {
  console.log(`DiT-${preset} at ${res} px, batch 2 (one guided step), headless Chromium WebGPU, one run:`);
  console.log(`  onnxruntime-web ${ort.ort_version} (WebGPU EP, float32 ONNX): ${ort.ms_per_forward.toFixed(1)} ms per forward (median of ${repeat}; output finite: ${ort.output_finite})`);
  console.log(`  dit-wasm (fp16 weights, linear on ${ours.linear_path}): ${ours.bench.ms_per_forward.toFixed(1)} ms per forward (median of ${repeat})`);
  console.log(`  ratio (dit-wasm / onnxruntime-web): ${out.ratio_dit_wasm_over_ort.toFixed(2)}x`);
}
await browser.close();
ortServer.close();
ourServer.close();
