// End-to-end test of a SiT (a flow model) on the page (www/demo, built), through the Hub stand-in (hub-server.mjs):
// the tiny SiT of tests/fixtures/hub/SiT-collections in the release's layout (a root `.pt` state dict, DiT's names,
// named a SiT by the location's `#arch=sit&heads=2`) with the VAE of tests/fixtures/hub/sd-vae-ft-ema. The page's
// images are compared with `dit sample` on the same files and settings; a diffusion sampler on the SiT is a typed
// error. Chromium's WebGPU adapter here is SwiftShader (CPU).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { ARGS, chromiumPath, errorKind, generate, LOAD, repo, site } from "./browser.mjs";
import { startHubServer } from "./hub-server.mjs";

const hubFixtures = path.join(repo, "tests/fixtures/hub");
const SIT_FILE = "SiT-tiny-2-64.pt";
const FRAGMENT = "#arch=sit&heads=2";
/** One image of class 3: guidance 4, seed 7 (the settings of the native runs compared). */
const RUN = { steps: 10, classLabel: 3, cfg: 4, seed: 7 };

let root, site_, hub, browser, context, page;

before(async () => {
  // Repos of the stand-in: test/SiT-collections and test/sd-vae-ft-ema, the fixtures as they are.
  root = fs.mkdtempSync(path.join(os.tmpdir(), "dit-sit-hub-"));
  fs.mkdirSync(path.join(root, "test"));
  for (const name of ["SiT-collections", "sd-vae-ft-ema"]) fs.symlinkSync(path.join(hubFixtures, name), path.join(root, "test", name));
  site_ = await serve(site);
  hub = await startHubServer({ root });
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  context = await browser.newContext();
});
after(async () => {
  await browser?.close();
  site_?.close();
  await hub?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** `dit sample` on the fixture files: [3, H, W] f32 in [-1, 1]. */
function nativeImage(sampler) {
  const dit = process.env.DIT_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(repo, "target"), "debug/dit");
  const out = path.join(os.tmpdir(), `dit-sit-e2e-${process.pid}.npy`);
  execFileSync(dit, [
    "sample", "--model", path.join(hubFixtures, "SiT-collections", SIT_FILE) + FRAGMENT, "--vae", path.join(hubFixtures, "sd-vae-ft-ema"),
    "--class", String(RUN.classLabel), "--cfg", String(RUN.cfg), "--steps", String(RUN.steps), "--sampler", sampler,
    "--seed", String(RUN.seed), "--quiet", "--out", out,
  ]);
  const buf = fs.readFileSync(out);
  fs.rmSync(out);
  const headerLen = buf.readUInt16LE(8);
  return new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + headerLen, buf.byteOffset + buf.length));
}

/** The largest difference between the native image (rounded as the page rounds) and the page's RGBA pixels. */
function maxDiff(native, pixels) {
  const hw = native.length / 3;
  assert.equal(hw * 4, pixels.length, "same image size");
  let d = 0;
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.min(255, Math.max(0, Math.trunc(127.5 * native[c * hw + p] + 128)));
      d = Math.max(d, Math.abs(v - pixels[p * 4 + c]));
    }
  }
  return d;
}

test("?model=hf://<owner>/SiT-collections/<file>.pt#arch=sit&heads=2 with ?vae=hf://<owner>/sd-vae-ft-ema loads; the samplers offered are the flow's", async () => {
  const model = `hf://test/SiT-collections/${SIT_FILE}${FRAGMENT}`;
  const query = `?model=${encodeURIComponent(model)}&vae=${encodeURIComponent("hf://test/sd-vae-ft-ema")}&endpoint=${encodeURIComponent(hub.url)}`;
  page = await context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.goto(`${site_.url}/${query}`);
  await page.waitForFunction(
    () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden,
    null,
    { timeout: LOAD },
  );
  assert.equal(await errorKind(page), null, "no error");
  const files = Object.keys(hub.stats().files);
  console.log("files the stand-in served:", files.join(", "));
  assert.ok(files.some((f) => f.endsWith(`SiT-collections/${SIT_FILE}`)), "the .pt came from the stand-in");
  assert.ok(files.some((f) => f.endsWith("sd-vae-ft-ema/diffusion_pytorch_model.safetensors")), "the VAE came from the stand-in");
  const offered = await page.$$eval("[data-testid=sampler] option", (os) => os.map((o) => o.value));
  assert.deepEqual(offered, ["euler", "heun", "euler-maruyama"], "a SiT is offered the flow samplers only");
});

test("a second load of the one-file location (same profile) fetches no weight bytes and gives the same image", async () => {
  assert.ok(page, "the SiT is loaded");
  const first = await generate(page, { ...RUN, sampler: "euler" });
  hub.resetStats();
  await page.reload();
  await page.waitForFunction(
    () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden,
    null,
    { timeout: LOAD },
  );
  assert.equal(await errorKind(page), null, "no error");
  const sent = Object.fromEntries(Object.entries(hub.stats().files).filter(([f]) => /\.(pt|safetensors)$/.test(f)).map(([f, v]) => [f, v.bytes]));
  console.log("second load, weight bytes sent:", sent);
  assert.equal(Object.values(sent).reduce((a, b) => a + b, 0), 0, "no weight bytes");
  assert.deepEqual(await generate(page, { ...RUN, sampler: "euler" }), first, "the cached weights give the same image");
});

test("the page offers the SiT presets (S/2 to XL/2, 256 px) with their download sizes, before any download", async () => {
  assert.ok(page, "the page is open");
  const options = await page.$$eval("[data-testid=model-select] option", (os) => os.map((o) => o.value));
  for (const v of ["sit-s", "sit-b", "sit-l", "sit-xl"]) assert.ok(options.includes(v), `preset ${v} offered`);
  const sizes = {};
  for (const v of ["sit-s", "sit-xl"]) {
    await page.selectOption("[data-testid=model-select]", v);
    sizes[v] = await page.textContent("[data-testid=model-size]");
  }
  console.log("SiT preset sizes:", sizes);
  assert.match(sizes["sit-s"], /330\.0 MB/);
  assert.match(sizes["sit-xl"], /2\.90 GB/);
});

for (const sampler of ["euler", "heun", "euler-maruyama"]) {
  test(`the page's image with ${sampler} equals \`dit sample --sampler ${sampler}\` within 2 levels`, async () => {
    assert.ok(page, "the SiT is loaded");
    const pixels = await generate(page, { ...RUN, sampler });
    assert.equal(await errorKind(page), null, "no error");
    const d = maxDiff(nativeImage(sampler), pixels);
    console.log(`browser (hf://test/SiT-collections/${SIT_FILE}${FRAGMENT}) vs native dit sample --sampler ${sampler}: max uint8 difference ${d}`);
    assert.ok(d <= 2, `max difference ${d} > 2`);
  });
}

test("a DDPM sampler on the SiT is a typed invalid-input error, not an image", async () => {
  assert.ok(page, "the SiT is loaded");
  // The page offers no DDPM for a SiT: the option is added as a visitor's script (or an old choice) could.
  await page.$eval("[data-testid=sampler]", (s) => s.append(Object.assign(document.createElement("option"), { value: "ddpm", textContent: "DDPM" })));
  const before = await page.locator("[data-testid=result]").count();
  await page.fill("[data-testid=steps]", "10");
  await page.selectOption("[data-testid=sampler]", "ddpm");
  await page.click("[data-testid=generate]");
  await page.waitForFunction(() => !document.querySelector("[data-testid=error]").hidden, null, { timeout: LOAD });
  const e = await errorKind(page);
  console.log("ddpm on a SiT:", e);
  assert.equal(e.kind, "invalid-input");
  assert.match(e.text, /ddpm/);
  assert.equal(await page.locator("[data-testid=result]").count(), before, "no image");
});
