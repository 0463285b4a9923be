// End-to-end tests of the page (www/demo, built) in Chromium driven by playwright-core, on the embedded demo model.
// Chromium's WebGPU adapter here is SwiftShader (CPU): loading compiles every pipeline (about a minute), so the
// tests share one browser context and load as few times as they can. Screenshots go to test-results/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";

const repo = path.resolve(import.meta.dirname, "../..");
const site = path.join(repo, "www/demo/dist");
const results = path.join(repo, "test-results");
const LOAD = 300_000;
const ARGS = ["--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-sandbox"];
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

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
  await page.goto(`${server.url}/${query ?? ""}`);
  await page.waitForFunction(
    () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden,
    null,
    { timeout: LOAD },
  );
  return page;
}

async function errorKind(page) {
  const e = page.locator("[data-testid=error]");
  return (await e.isHidden()) ? null : { kind: await e.getAttribute("data-kind"), text: await e.textContent() };
}

/** Sets the controls and generates; returns the last result's RGBA pixels. */
async function generate(page, { steps, sampler = "dpmpp2m", seed = 7, cfg = 4, count = 1 }) {
  await page.fill("[data-testid=steps]", String(steps));
  await page.selectOption("[data-testid=sampler]", sampler);
  await page.fill("[data-testid=seed]", String(seed));
  await page.fill("[data-testid=cfg]", String(cfg));
  await page.fill("[data-testid=count]", String(count));
  const before = await page.locator("[data-testid=result]").count();
  await page.click("[data-testid=generate]");
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=result]").length > n, before, { timeout: LOAD });
  return page.evaluate(() => {
    const c = document.querySelector("[data-testid=result]");
    return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
  });
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
  const dit = process.env.DIT_BIN ?? path.join(repo, "target/debug/dit");
  const out = path.join(os.tmpdir(), `dit-e2e-${process.pid}.npy`);
  const cls = await page.locator("[data-testid=class-select]").inputValue();
  execFileSync(dit, ["sample", "--model", path.join(repo, "models/demo/dit"), "--vae", path.join(repo, "models/demo/vae"), "--class", cls,
    "--cfg", "4", "--steps", "10", "--sampler", "dpmpp2m", "--seed", "7", "--quiet", "--out", out]);
  const buf = fs.readFileSync(out);
  const headerLen = buf.readUInt16LE(8);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + headerLen, buf.byteOffset + buf.length));
  const hw = data.length / 3;
  let maxDiff = 0;
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) {
      const native = Math.min(255, Math.max(0, Math.trunc(127.5 * data[c * hw + p] + 128)));
      maxDiff = Math.max(maxDiff, Math.abs(native - pixels[p * 4 + c]));
    }
  }
  console.log(`browser vs native: ${hw} pixels, max uint8 difference ${maxDiff}`);
  assert.ok(maxDiff <= 2, `max difference ${maxDiff} > 2`);
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

test("error states: download, integrity, adapter limits", async () => {
  for (const [query, kind] of [
    ["?model=./faulty/404/demo/dit", "download"],
    ["?model=./faulty/flip/demo/dit", "integrity"],
    ["?maxBinding=4096", "adapter-limits"],
  ]) {
    const p = await open(query);
    const e = await errorKind(p);
    console.log(query, "->", e);
    assert.equal(e?.kind, kind);
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
