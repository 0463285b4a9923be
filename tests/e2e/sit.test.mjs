// End-to-end test of a SiT (a flow model) on the page (www/demo, built), through the Hub stand-in (hub-server.mjs):
// the tiny SiT of tests/fixtures/hub/SiT-collections in the release's layout (a root `.pt` state dict, DiT's names,
// named a SiT by the location's `#arch=sit&heads=2`) with the VAE of tests/fixtures/hub/sd-vae-ft-ema. The page's
// images are compared with `dit sample` on the same files and settings; a diffusion sampler on the SiT is a typed
// error. Chromium's WebGPU adapter here is SwiftShader (CPU).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { errorKind, generate, hubSession, LOAD, maxDiff, nativeSample, repo, site } from "./browser.mjs";

const hubFixtures = path.join(repo, "tests/fixtures/hub");
const SIT_FILE = "SiT-tiny-2-64.pt";
const FRAGMENT = "#arch=sit&heads=2";
/** One image of class 3: guidance 4, seed 7 (the settings of the native runs compared). */
const RUN = { steps: 10, classLabel: 3, cfg: 4, seed: 7 };

let root, session, site_, hub, browser, context, page;

before(async () => {
  // Repos of the stand-in: test/SiT-collections and test/sd-vae-ft-ema, the fixtures as they are.
  root = fs.mkdtempSync(path.join(os.tmpdir(), "dit-sit-hub-"));
  fs.mkdirSync(path.join(root, "test"));
  for (const name of ["SiT-collections", "sd-vae-ft-ema"]) fs.symlinkSync(path.join(hubFixtures, name), path.join(root, "test", name));
  session = await hubSession(root);
  ({ site: site_, hub, browser, context } = session);
});
after(async () => {
  await session?.close();
});

/** `dit sample` on the fixture files: [3, H, W] f32 in [-1, 1]. */
function nativeImage(sampler) {
  return nativeSample([
    "--model", path.join(hubFixtures, "SiT-collections", SIT_FILE) + FRAGMENT, "--vae", path.join(hubFixtures, "sd-vae-ft-ema"),
    "--class", String(RUN.classLabel), "--cfg", String(RUN.cfg), "--steps", String(RUN.steps), "--sampler", sampler,
    "--seed", String(RUN.seed),
  ]);
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
  assert.deepEqual(offered, ["euler", "heun", "euler-maruyama", "dopri5"], "a SiT is offered the flow samplers only");
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

for (const sampler of ["euler", "heun", "euler-maruyama", "dopri5"]) {
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
