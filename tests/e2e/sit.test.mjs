// End-to-end test of a SiT (a flow model) on the page (www/demo, built), through the Hub stand-in (hub-server.mjs):
// the tiny SiT of tests/fixtures/hub/SiT-collections in the release's layout (a root `.pt` state dict, DiT's names,
// named a SiT by the location's `#arch=sit&heads=2`) with the VAE of tests/fixtures/hub/sd-vae-ft-ema. The page's
// images are compared with `dit sample` on the same files and settings; a diffusion sampler on the SiT is a typed
// error. The SiT-XL/2 preset is loaded as a visitor picks it, from repos named as the release's (the tiny SiT served as
// nyu-visionx/SiT-collections/SiT-XL-2-256.pt). Chromium's WebGPU adapter here is SwiftShader (CPU).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { errorKind, generate, hubSession, LOAD, maxDiff, nativeSample, repo, site } from "./browser.mjs";

const hubFixtures = path.join(repo, "tests/fixtures/hub");
const SIT_FILE = "SiT-tiny-2-64.pt";
const FRAGMENT = "#arch=sit&heads=2";
/** The file the SiT-XL/2 preset reads, and the fragment the preset gives it. */
const PRESET_FILE = "SiT-XL-2-256.pt";
const PRESET_FRAGMENT = "#arch=sit&heads=16";
/** One image of class 3: guidance 4, seed 7 (the settings of the native runs compared). */
const RUN = { steps: 10, classLabel: 3, cfg: 4, seed: 7 };

let root, session, site_, hub, browser, context, page;

before(async () => {
  // Repos of the stand-in: test/SiT-collections and test/sd-vae-ft-ema, the fixtures as they are.
  root = fs.mkdtempSync(path.join(os.tmpdir(), "dit-sit-hub-"));
  fs.mkdirSync(path.join(root, "test"));
  for (const name of ["SiT-collections", "sd-vae-ft-ema"]) fs.symlinkSync(path.join(hubFixtures, name), path.join(root, "test", name));
  // The repos the page's SiT presets name, in their layout: the tiny SiT as the release's XL/2 file (the preset names
  // its heads, 16), and the tiny VAE as stabilityai/sd-vae-ft-ema.
  fs.mkdirSync(path.join(root, "nyu-visionx", "SiT-collections"), { recursive: true });
  fs.symlinkSync(path.join(hubFixtures, "SiT-collections", SIT_FILE), path.join(root, "nyu-visionx", "SiT-collections", PRESET_FILE));
  // Every Hub repo holds a .gitattributes; the page reads it to learn the commit `main` names.
  fs.writeFileSync(path.join(root, "nyu-visionx", "SiT-collections", ".gitattributes"), "*.pt filter=lfs diff=lfs merge=lfs -text\n");
  fs.mkdirSync(path.join(root, "stabilityai"));
  fs.symlinkSync(path.join(hubFixtures, "sd-vae-ft-ema"), path.join(root, "stabilityai", "sd-vae-ft-ema"));
  session = await hubSession(root);
  ({ site: site_, hub, browser, context } = session);
});
after(async () => {
  await session?.close();
});

/** `dit sample` on the fixture files: [3, H, W] f32 in [-1, 1]. */
function nativeImage(sampler, fragment = FRAGMENT) {
  return nativeSample([
    "--model", path.join(hubFixtures, "SiT-collections", SIT_FILE) + fragment, "--vae", path.join(hubFixtures, "sd-vae-ft-ema"),
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

test("the SiT-XL/2 preset, picked and loaded as a visitor does, reads nyu-visionx/SiT-collections and stabilityai/sd-vae-ft-ema and its image equals `dit sample`", async () => {
  // The stand-in serves the tiny SiT as SiT-XL-2-256.pt: the preset's own location, revision and VAE are used.
  const p = await context.newPage();
  p.on("pageerror", (e) => console.log("page error:", e.message));
  await p.goto(`${site_.url}/?endpoint=${encodeURIComponent(hub.url)}`);
  await p.waitForFunction(() => /^Ready/.test(document.querySelector("#load-text").textContent) || !document.querySelector("[data-testid=error]").hidden, null, { timeout: LOAD });
  assert.equal(await errorKind(p), null, "the demo loaded");
  hub.resetStats();
  await p.selectOption("[data-testid=model-select]", "sit-xl");
  assert.match(await p.textContent("[data-testid=model-size]"), /2\.90 GB/, "the preset's download is shown before it starts");
  await p.click("#load");
  await p.waitForFunction(
    () => (/^Ready/.test(document.querySelector("#load-text").textContent) && [...document.querySelectorAll("[data-testid=sampler] option")].some((o) => o.value === "euler")) ||
      !document.querySelector("[data-testid=error]").hidden,
    null,
    { timeout: LOAD },
  );
  assert.equal(await errorKind(p), null, "no error");
  const files = Object.keys(hub.stats().files);
  console.log("the SiT-XL/2 preset's load, files the stand-in served:", files.join(", "));
  assert.ok(files.some((f) => f.endsWith(`nyu-visionx/SiT-collections/${PRESET_FILE}`)), "the preset's .pt came from nyu-visionx/SiT-collections");
  assert.ok(files.some((f) => f.endsWith("stabilityai/sd-vae-ft-ema/diffusion_pytorch_model.safetensors")), "the preset's VAE came from stabilityai/sd-vae-ft-ema");
  // The file is kept under the commit that `main` resolved to, so a later move of `main` is not taken for it.
  const keys = await p.evaluate(async () => {
    const out = [];
    for (const n of await caches.keys()) for (const r of await (await caches.open(n)).keys()) out.push(decodeURIComponent(r.url));
    return out;
  });
  const commit = hub.commitOf("nyu-visionx/SiT-collections");
  assert.ok(keys.some((k) => k.includes(`|nyu-visionx/SiT-collections|${commit}|${PRESET_FILE}|`)), `the tensors are kept under commit ${commit}`);
  // (The resolution itself is kept under the name, for offline visits: refs.dit-wasm.invalid.)
  const tensors = keys.filter((k) => !k.startsWith("https://refs.dit-wasm.invalid/"));
  assert.ok(!tensors.some((k) => k.includes(`|nyu-visionx/SiT-collections|main|`)), "no tensor is kept under the name main");
  const pixels = await generate(p, { ...RUN, sampler: "euler" });
  assert.equal(await errorKind(p), null, "no error");
  const d = maxDiff(nativeImage("euler", PRESET_FRAGMENT), pixels);
  console.log(`the SiT-XL/2 preset in the browser vs native dit sample (${SIT_FILE}${PRESET_FRAGMENT}) --sampler euler: max uint8 difference ${d}`);
  assert.ok(d <= 2, `max difference ${d} > 2`);
  await p.close();
});
