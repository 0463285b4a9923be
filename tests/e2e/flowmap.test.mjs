// End-to-end test of the flow maps (MeanFlow / α-Flow, Decoupled MeanFlow) on the page (www/demo, built), through the
// Hub stand-in (hub-server.mjs): the page's presets picked and loaded as a visitor does, from repos and files named as
// the releases' (snap-research/alphaflow/*-XL-2-*.pt, kyungmnlee/DMF/dmf_xl_2_256.pt, stabilityai/sd-vae-ft-ema), the
// stand-in serving there the tiny networks of tests/fixtures/flowmap in the release layouts (an α-Flow training
// snapshot, a DMF flat state dict) and the tiny VAE of tests/fixtures/hub/sd-vae-ft-ema. The page's images are
// compared with `dit sample` on the same files and settings. Chromium's WebGPU adapter here is SwiftShader (CPU).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { errorKind, generate, hubSession, LOAD, maxDiff, nativeSample, repo } from "./browser.mjs";

const fixtures = path.join(repo, "tests/fixtures");
/** Each preset, the fixture served under its file name, the fragment its location gives, and its defaults. */
const PRESETS = {
  "dmf-256": { repo: "kyungmnlee/DMF", file: "dmf_xl_2_256.pt", fixture: "flowmap/dmf.pt", fragment: "#arch=dmf&dmf-depth=20&heads=16", steps: 1, sampler: "flowmap", native: [] },
  "meanflow-xl": { repo: "snap-research/alphaflow", file: "meanflow-XL-2-cfg.pt", fixture: "flowmap/meanflow.pt", fragment: "#arch=meanflow&heads=16", steps: 2, sampler: "flowmap", native: ["--steps", "2"] },
  "alphaflow-xl": {
    repo: "snap-research/alphaflow", file: "alphaflow-XL-2-cfg.pt", fixture: "flowmap/meanflow.pt", fragment: "#arch=meanflow&heads=16",
    steps: 2, sampler: "flowmap-consistency", native: ["--consistency", "--grid", "1,0.55,0"],
  },
};
const RUN = { classLabel: 3, seed: 7 };

let root, session, site, hub, context;
/** Every file the stand-in has served in this run (the VAE is fetched once, then read from Cache Storage). */
const served = new Set();

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "dit-flowmap-hub-"));
  for (const p of Object.values(PRESETS)) {
    const dir = path.join(root, p.repo);
    fs.mkdirSync(dir, { recursive: true });
    fs.symlinkSync(path.join(fixtures, p.fixture), path.join(dir, p.file));
    // Every Hub repo holds a .gitattributes; the page reads it to learn the commit `main` names.
    fs.writeFileSync(path.join(dir, ".gitattributes"), "*.pt filter=lfs diff=lfs merge=lfs -text\n");
  }
  fs.mkdirSync(path.join(root, "stabilityai"));
  fs.symlinkSync(path.join(fixtures, "hub/sd-vae-ft-ema"), path.join(root, "stabilityai", "sd-vae-ft-ema"));
  session = await hubSession(root);
  ({ site, hub, context } = session);
});
after(async () => {
  await session?.close();
});

/** A page on the stand-in Hub with the embedded demo loaded. */
async function openPage() {
  const p = await context.newPage();
  p.on("pageerror", (e) => console.log("page error:", e.message));
  // ?model=demo: the last choice (a preset, kept in localStorage) would not load by itself.
  await p.goto(`${site.url}/?model=demo&endpoint=${encodeURIComponent(hub.url)}`);
  await p.waitForFunction(() => /^Ready/.test(document.querySelector("#load-text").textContent) || !document.querySelector("[data-testid=error]").hidden, null, { timeout: LOAD });
  assert.equal(await errorKind(p), null, "the demo loaded");
  return p;
}

test("the page offers the flow-map presets with their download and licence before any download", async () => {
  const p = await openPage();
  hub.resetStats();
  const texts = {};
  for (const v of ["dmf-256", "dmf-512", "meanflow-xl", "alphaflow-xl", "alphaflow-xl-plus"]) {
    await p.selectOption("[data-testid=model-select]", v);
    texts[v] = await p.textContent("[data-testid=model-size]");
  }
  console.log("flow-map presets:", texts);
  for (const v of ["dmf-256", "dmf-512"]) assert.match(texts[v], /2\.90 GB.*Licence: not stated upstream/);
  for (const v of ["meanflow-xl", "alphaflow-xl", "alphaflow-xl-plus"]) assert.match(texts[v], /2\.90 GB.*Licence: Snap Inc\. non-commercial/);
  assert.deepEqual(hub.stats().files, {}, "nothing was downloaded by choosing");
  await p.close();
});

for (const [choice, preset] of Object.entries(PRESETS)) {
  test(`the ${choice} preset loads from ${preset.repo} as a visitor picks it; its default image equals \`dit sample\` within 2 levels`, async () => {
    const p = await openPage();
    hub.resetStats();
    await p.selectOption("[data-testid=model-select]", choice);
    await p.click("#load");
    await p.waitForFunction(
      () => (/^Ready/.test(document.querySelector("#load-text").textContent) && [...document.querySelectorAll("[data-testid=sampler] option")].some((o) => o.value === "flowmap")) ||
        !document.querySelector("[data-testid=error]").hidden,
      null,
      { timeout: LOAD },
    );
    assert.equal(await errorKind(p), null, "no error");
    const files = Object.keys(hub.stats().files);
    for (const f of files) served.add(f);
    assert.ok(files.some((f) => f.endsWith(`${preset.repo}/${preset.file}`)), `the preset's .pt came from ${preset.repo}`);
    assert.ok([...served].some((f) => f.endsWith("stabilityai/sd-vae-ft-ema/diffusion_pytorch_model.safetensors")), "the VAE came from stabilityai/sd-vae-ft-ema");
    // The controls take the preset's sampling: its steps, guidance 1 (trained in), the flow-map samplers, 1 to 8 steps.
    const controls = await p.evaluate(() => ({
      steps: document.querySelector("[data-testid=steps]").value,
      max: document.querySelector("[data-testid=steps]").max,
      cfg: document.querySelector("[data-testid=cfg]").value,
      sampler: document.querySelector("[data-testid=sampler]").value,
      samplers: [...document.querySelectorAll("[data-testid=sampler] option")].map((o) => o.value),
      hint: document.querySelector("[data-testid=cfg-hint]").hidden ? "" : document.querySelector("[data-testid=cfg-hint]").textContent,
    }));
    console.log(`${choice} controls:`, controls);
    assert.deepEqual(
      { steps: controls.steps, max: controls.max, cfg: controls.cfg, sampler: controls.sampler, samplers: controls.samplers },
      { steps: String(preset.steps), max: "8", cfg: "1", sampler: preset.sampler, samplers: ["flowmap", "flowmap-consistency"] },
    );
    assert.match(controls.hint, /trained into this model/);
    const pixels = await generate(p, { ...RUN, steps: preset.steps, sampler: preset.sampler, cfg: 1 });
    assert.equal(await errorKind(p), null, "no error");
    const caption = await p.textContent("[data-testid=result-figure] figcaption");
    console.log(`${choice} caption:`, caption);
    assert.match(caption, /flow map/);
    const native = nativeSample([
      "--model", path.join(fixtures, preset.fixture) + preset.fragment, "--vae", path.join(fixtures, "hub/sd-vae-ft-ema"),
      "--class", String(RUN.classLabel), "--seed", String(RUN.seed), ...preset.native,
    ]);
    const d = maxDiff(native, pixels);
    console.log(`${choice} in the browser vs native dit sample (${preset.fixture}${preset.fragment} ${preset.native.join(" ")}): max uint8 difference ${d}`);
    assert.ok(d <= 2, `max difference ${d} > 2`);
    await p.close();
  });
}
