// End-to-end tests of the page (www/demo, built) in Chromium driven by playwright-core, on the embedded demo model.
// Chromium's WebGPU adapter here is SwiftShader (CPU): loading compiles every pipeline (about a minute), so the
// tests share one browser context and load as few times as they can. Screenshots go to test-results/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { ARGS, chromiumPath, errorKind, generate, LOAD, maxDiff, nativeSample, repo, site } from "./browser.mjs";

const results = path.join(repo, "test-results");

let server, browser, context;
before(async () => {
  fs.mkdirSync(results, { recursive: true });
  server = await serve(site);
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  context = await browser.newContext();
});
after(async () => {
  await browser?.close();
  server?.close();
});

async function open(query) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.goto(`${server.url}/${query ?? "?model=demo"}`);
  await page.waitForFunction(
    () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden,
    null,
    { timeout: LOAD },
  );
  return page;
}

/** IEEE half -> number. */
function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

/** Writes the model directory `dir` as one f32 .safetensors file (as a user's checkpoint would be); returns its config. */
function writeSingleFile(dir, out) {
  const index = JSON.parse(fs.readFileSync(path.join(dir, "model.safetensors.index.json"), "utf8"));
  const tensors = [];
  for (const shard of Object.keys(index.metadata.shards)) {
    const buf = fs.readFileSync(path.join(dir, shard));
    const n = Number(buf.readBigUInt64LE(0));
    for (const [name, info] of Object.entries(JSON.parse(buf.subarray(8, 8 + n).toString()))) {
      if (name === "__metadata__") continue;
      const src = buf.subarray(8 + n + info.data_offsets[0], 8 + n + info.data_offsets[1]);
      const f32 = new Float32Array(src.length / 2);
      for (let i = 0; i < f32.length; i++) f32[i] = halfToFloat(src.readUInt16LE(2 * i));
      tensors.push([name, info.shape, Buffer.from(f32.buffer)]);
    }
  }
  tensors.sort(([a], [b]) => (a < b ? -1 : 1));
  const header = {};
  let off = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: "F32", shape, data_offsets: [off, off + data.length] };
    off += data.length;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, Buffer.concat([len, h, ...tensors.map((t) => t[2])]));
  return index.metadata.config;
}

let page;
let pixels;

test("the page loads the demo model (through a 500 and a dropped connection) and generates an image", async () => {
  // 500once / droponce: the first request of every file fails; the loader's retries must recover.
  page = await open("?model=./faulty/500once/demo/dit&vae=./faulty/droponce/demo/vae");
  assert.equal(await errorKind(page), null, "no error");
  pixels = await generate(page, { steps: 10 });
  assert.match(await page.locator("[data-testid=progress-text]").textContent(), /step 10\/10/);
  const gray = pixels.filter((_, i) => i % 4 === 0);
  const mean = gray.reduce((a, b) => a + b, 0) / gray.length;
  const sd = Math.sqrt(gray.reduce((a, b) => a + (b - mean) ** 2, 0) / gray.length);
  console.log(`result: ${gray.length} pixels, mean ${mean.toFixed(1)}, sd ${sd.toFixed(1)}`);
  assert.ok(sd > 10, "the image is not blank");
  await page.screenshot({ path: path.join(results, "page.png"), fullPage: true });
});

test("the same seed gives the same image as the native `dit sample`", async () => {
  const cls = String(parseInt(await page.locator("[data-testid=class-select]").inputValue(), 10));
  const native = nativeSample(["--model", path.join(repo, "models/demo/dit"), "--vae", path.join(repo, "models/demo/vae"),
    "--class", cls, "--cfg", "4", "--steps", "10", "--sampler", "dpmpp2m", "--seed", "7"]);
  const d = maxDiff(native, pixels);
  console.log(`browser vs native: ${native.length / 3} pixels, max uint8 difference ${d}`);
  assert.ok(d <= 2, `max difference ${d} > 2`);
});

test("the page opens on the flow-map demo: one step, no guidance, the image of `dit sample`'s defaults", async () => {
  const p = await open("");
  assert.equal(await errorKind(p), null, "no error");
  assert.equal(await p.locator("[data-testid=model-select]").inputValue(), "demo-flow");
  assert.equal(await p.locator("[data-testid=steps]").inputValue(), "1");
  assert.equal(await p.locator("[data-testid=sampler]").inputValue(), "flowmap");
  assert.equal(Number(await p.locator("[data-testid=cfg]").inputValue()), 1);
  // The defaults just checked, filled in again by the shared helper (it sets every field), with seed 7.
  const flow = await generate(p, { steps: 1, sampler: "flowmap", seed: 7, cfg: 1 });
  const cls = String(parseInt(await p.locator("[data-testid=class-select]").inputValue(), 10));
  const native = nativeSample(["--class", cls, "--seed", "7"]);
  const d = maxDiff(native, flow);
  console.log(`flow-map demo, browser (1 step) vs native defaults: max uint8 difference ${d}`);
  assert.ok(d <= 2, `max difference ${d} > 2`);
  await p.screenshot({ path: path.join(results, "page-flowmap-default.png"), fullPage: true });
  await p.close();
});

test("cancel stops a run and the next run works", async () => {
  await page.fill("[data-testid=steps]", "400");
  await page.selectOption("[data-testid=sampler]", "ddpm");
  await page.click("[data-testid=generate]");
  await page.waitForFunction(() => /step [2-9]\d*\//.test(document.querySelector("[data-testid=progress-text]").textContent), null, { timeout: LOAD });
  await page.click("[data-testid=cancel]");
  await page.waitForFunction(() => document.querySelector("[data-testid=progress-text]").textContent === "Cancelled.", null, { timeout: 60_000 });
  const n = await page.locator("[data-testid=result]").count();
  await generate(page, { steps: 4 });
  assert.equal(await page.locator("[data-testid=result]").count(), n + 1);
  assert.equal(await errorKind(page), null);
});

test("a second page load fetches no weight shards", async () => {
  const shardRequests = () => [...server.counts].filter(([k]) => k.endsWith(".safetensors")).reduce((a, [, v]) => a + v, 0);
  const before = shardRequests();
  const second = await open("?model=./faulty/500once/demo/dit&vae=./faulty/droponce/demo/vae");
  const stats = await second.evaluate(() => window.__ditStats);
  console.log("second load:", stats, await second.locator("[data-testid=cache-state]").textContent());
  assert.equal(stats.downloaded, 0);
  assert.ok(stats.cached > 0);
  assert.equal(shardRequests(), before, "no shard was requested");
  await second.close();
});

test("one f32 .safetensors file per model, read by HTTP Range requests, gives the same image; Range faults are typed errors", async () => {
  const dir = path.join(site, "single");
  const dcfg = writeSingleFile(path.join(repo, "models/demo/dit"), path.join(dir, "dit.safetensors"));
  const vcfg = writeSingleFile(path.join(repo, "models/demo/vae"), path.join(dir, "vae/diffusion_pytorch_model.safetensors"));
  fs.writeFileSync(path.join(dir, "vae/config.json"), JSON.stringify({ norm_num_groups: vcfg.norm_num_groups, scaling_factor: vcfg.scaling_factor }));
  const sha = crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, "dit.safetensors"))).digest("hex");
  const dit = (mode, frag) => encodeURIComponent(`./faulty/${mode}/single/dit.safetensors#heads=${dcfg.num_heads}&input_size=${dcfg.input_size}${frag ?? ""}`);
  const vae = "./single/vae/diffusion_pytorch_model.safetensors";
  // Every range request fails once with a 500 first: the retries must recover. The sha256 covers the whole file.
  const p = await open(`?model=${dit("500once", `&sha256=${sha}`)}&vae=${vae}`);
  assert.equal(await errorKind(p), null, "no error");
  const ranges = [...server.counts].filter(([k]) => k.includes("/single/")).map(([k, v]) => `${k} x${v}`);
  console.log("single-file requests:", ranges.join(", "));
  const px = await generate(p, { steps: 10 });
  assert.equal(px.length, pixels.length, "same image size");
  let maxDiff = 0;
  for (let i = 0; i < px.length; i++) maxDiff = Math.max(maxDiff, Math.abs(px[i] - pixels[i]));
  console.log(`single f32 files vs the fp16 model directories: max uint8 difference ${maxDiff}`);
  assert.equal(maxDiff, 0, "f32 rounded to fp16 on the fly gives the converted weights");
  await p.close();
  for (const [query, kind, text] of [
    [`?model=${dit("norange")}`, "download", /Range/],
    [`?model=${dit("flip", `&sha256=${sha}`)}`, "integrity", /sha256/],
    [`?model=${dit("404")}`, "not-found", /404/],
  ]) {
    const q = await open(query);
    const e = await errorKind(q);
    console.log(decodeURIComponent(query), "->", e);
    assert.equal(e?.kind, kind);
    assert.match(e.text, text);
    await q.close();
  }
});

test("error states: not found (404), download (a stalled server timing out), integrity, adapter limits", async () => {
  for (const [query, kind, text] of [
    ["?model=./faulty/404/demo/dit", "not-found", /404/],
    ["?model=./faulty/stall/demo/dit&timeout=1000", "download", /timed out/],
    ["?model=./faulty/flip/demo/dit", "integrity"],
    ["?maxBinding=4096", "adapter-limits"],
  ]) {
    const p = await open(query);
    const e = await errorKind(p);
    console.log(query, "->", e);
    assert.equal(e?.kind, kind);
    if (text) assert.match(e.text, text);
    if (kind === "integrity") await p.screenshot({ path: path.join(results, "error.png"), fullPage: true });
    await p.close();
  }
});

test("no WebGPU: a clear message", async () => {
  const plain = await chromium.launch({ executablePath: chromiumPath, args: ARGS });
  const p = await plain.newPage();
  await p.goto(`${server.url}/`);
  await p.waitForSelector("[data-testid=error]:not([hidden])", { timeout: 30_000 });
  const e = await errorKind(p);
  console.log("without --enable-unsafe-webgpu ->", e);
  assert.equal(e.kind, "no-webgpu");
  await plain.close();
});

test("the kernel bench page times every linear kernel (a small shape) and names bad shapes", async () => {
  const p = await context.newPage();
  await p.goto(`${server.url}/bench.html?shapes=64x256x128&repeat=1`);
  await p.waitForFunction(() => !document.querySelector("[data-testid=bench-result]").hidden, null, { timeout: LOAD });
  const r = JSON.parse(await p.locator("[data-testid=bench-result]").textContent());
  console.log("bench.html 64x256x128:", r.linear?.[0]?.kernels?.map((k) => `${k.kernel} ${k.ms.toFixed(2)} ms`).join(", "));
  assert.deepEqual([r.linear[0].m, r.linear[0].k, r.linear[0].n], [64, 256, 128]);
  assert.equal(r.linear[0].kernels.length, 3);
  for (const k of r.linear[0].kernels) assert.ok(k.ms > 0 && Number.isFinite(k.gflops_per_s), JSON.stringify(k));
  await p.goto(`${server.url}/bench.html?shapes=64x250x128`);
  await p.waitForFunction(() => !document.querySelector("[data-testid=bench-result]").hidden, null, { timeout: LOAD });
  const bad = JSON.parse(await p.locator("[data-testid=bench-result]").textContent());
  console.log("bench.html 64x250x128 ->", bad);
  assert.equal(bad.error, "invalid-input");
  await p.close();
});
