// The page and the package in Firefox (Debian's firefox-esr, WebGPU on this machine's Vulkan driver: lavapipe without
// a GPU), driven by puppeteer-core over WebDriver BiDi: one Firefox for every case, each case the Chromium one in
// few loads. Without WebGPU in Firefox every case fails and says so (firefox.mjs); firefox-webgpu-off.test.mjs checks
// that they do.
//   - a visitor's offline path (first visit, one image, offline, reload of the same tab, the same image), the server
//     sending `Vary: Origin` as `npm start` does (offline.test.mjs runs it in Chromium with and without);
//   - that image against the native `dit sample` (same seed and settings), within 2 levels;
//   - a class blend on the page, its alpha 0.5 cell against `dit sample --blend`;
//   - an `hf://` load through the stand-in Hub (302 to a CDN origin, ranges), its image against `dit sample`;
//   - the package imported from another origin (`<script type="module">` from a CDN), its image against `dit sample`.
// Chromium only, so not here: crashing the GPU process (faults.test.mjs) and overriding the storage quota
// (storage.test.mjs) are DevTools Protocol calls; installability (page-product.test.mjs) is Chromium's own report.
// The wasm-bindgen-test suite (tests/web.rs) runs in Firefox from scripts/test.sh (geckodriver).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startHubServer } from "./hub-server.mjs";
import { LOAD, maxDiff, nativeSample, repo, site } from "./browser.mjs";
import { launchFirefox, requireWebGpu } from "./firefox.mjs";
import { packageOnAnotherOrigin, serve } from "./server.mjs";
import { maxPixelDiff, offlineRevisit, run, waitLoaded } from "./visitor.mjs";

/** One image of class 8: 8 DDIM steps at guidance 4, seed 11. */
const SETTINGS = { classLabel: 8, steps: 8, sampler: "ddim", seed: 11, cfg: 4 };
const demo = ["--model", path.join(repo, "models/demo/dit"), "--vae", path.join(repo, "models/demo/vae")];
const native = (s, extra = []) =>
  nativeSample([...demo, "--class", String(s.classLabel), "--cfg", String(s.cfg), "--steps", String(s.steps), "--sampler", s.sampler, "--seed", String(s.seed), ...extra]);

let browser, server, page, offline;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dit-firefox-"));

before(async () => {
  server = await serve(site, 0, { headers: { vary: "Origin" } });
  browser = await launchFirefox();
  console.log("Firefox", await browser.version());
  // WebGPU, checked on a page of the site's origin that is not the page (no service worker registers).
  const probe = await browser.newPage();
  await probe.goto(`${server.url}/no-such-page`);
  console.log("Firefox's WebGPU adapter:", JSON.stringify(await requireWebGpu(probe)));
  await probe.close();
});
after(async () => {
  await browser?.close();
  server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("Firefox: offline after a first visit, the same tab reloads and makes the same image (server Vary: Origin)", async () => {
  page = await browser.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  offline = await offlineRevisit(page, server, SETTINGS, "?model=demo");
  const adapter = await page.$eval("#adapter", (p) => p.textContent);
  console.log(`kept ${offline.kept.length} files; offline reload controlled: ${offline.controlled}; the page's GPU line: ${adapter}`);
  // Firefox names no adapter (GPUAdapterInfo's strings are empty): the line says so rather than wgpu's backend name.
  assert.match(adapter, /^GPU: .*Firefox does not name/);
  assert.deepEqual(offline.kept.filter((f) => f.vary !== null), [], "kept without the server's Vary");
  assert.ok(offline.controlled, "the reloaded page is the service worker's");
  assert.equal(maxPixelDiff(offline.first, offline.second), 0, "the same image offline");
});

test("Firefox: the page's image is the native `dit sample` one (same seed and settings), within 2 levels", () => {
  assert.ok(offline, "the first case made the image");
  const d = maxDiff(native(SETTINGS), offline.first);
  console.log(`Firefox page vs dit sample (class 8, 8 DDIM steps, guidance 4, seed 11): max uint8 difference ${d}`);
  assert.ok(d <= 2, `max difference ${d} > 2`);
});

test("Firefox: a class blend on the page; its alpha 0.5 cell is `dit sample --blend`'s image", async () => {
  assert.ok(page, "the first case opened the page");
  const half = await run(page, { ...SETTINGS, extra: { "blend-with": 1 } }, { button: "blend-run", selector: "[data-testid=blend]", image: "[data-testid=blend] [data-testid=blend-image]", index: 2 });
  const d = maxDiff(native(SETTINGS, ["--blend", "1", "--alpha", "0.5"]), half);
  console.log(`Firefox blend 8 -> 1 at alpha 0.5 vs dit sample: max uint8 difference ${d}`);
  assert.ok(d <= 2, `max difference ${d} > 2`);
  await page.close();
});

test("Firefox: ?model=hf://… loads through the stand-in Hub (a 302 to the CDN's origin, ranges) and makes `dit sample`'s image", async () => {
  const root = path.join(tmp, "hub");
  fs.mkdirSync(path.join(root, "test"), { recursive: true });
  fs.symlinkSync(path.join(repo, "tests/fixtures/hub/DiT-tiny"), path.join(root, "test/DiT-tiny"));
  const hub = await startHubServer({ root });
  const p = await browser.newPage();
  try {
    await p.goto(`${server.url}/?model=${encodeURIComponent("hf://test/DiT-tiny")}&endpoint=${encodeURIComponent(hub.url)}`);
    const e = await waitLoaded(p);
    assert.equal(e, null, `no error: ${JSON.stringify(e)}`);
    const s = { classLabel: 3, steps: 10, sampler: "dpmpp2m", seed: 7, cfg: 4 };
    const pixels = await run(p, s);
    const stats = hub.stats();
    assert.ok(stats.log.some((r) => r.origin === "cdn" && r.status === 206), "weights come from the CDN origin after the 302, in ranges");
    const d = maxDiff(
      nativeSample(["--model", path.join(repo, "tests/fixtures/hub/DiT-tiny"), "--class", "3", "--cfg", "4", "--steps", "10", "--sampler", "dpmpp2m", "--seed", "7"]),
      pixels,
    );
    console.log(`Firefox hf://test/DiT-tiny vs dit sample: max uint8 difference ${d}`);
    assert.ok(d <= 2, `max difference ${d} > 2`);
  } finally {
    await p.close();
    await hub.close();
  }
});

test("Firefox: a page on another origin imports the package with <script type=module> and generates", async () => {
  const dir = path.join(tmp, "embed");
  fs.mkdirSync(dir);
  const { cdn, site: embed } = await packageOnAnotherOrigin(repo, dir);
  const p = await browser.newPage();
  try {
    await p.goto(`${embed.url}/`);
    await p.waitForFunction(() => window.dit !== undefined, { timeout: 30_000 });
    const got = await p.evaluate(async (models) => {
      const s = await window.dit.createSampler({ model: `${models}/dit`, vae: `${models}/vae` });
      const r = await s.generate({ classLabels: [3], blend: { with: 7, alpha: 0.5 }, cfgScale: 4, steps: 4, sampler: "ddim", seed: 5 });
      s.dispose();
      return Array.from(r.images[0]);
    }, `${cdn.url}/models/demo`);
    const fetched = cdn.requests.map((r) => r.url);
    for (const f of ["/dit-wasm/dist/index.js", "/dit-wasm/dist/worker.js", "/dit-wasm/pkg/dit_wasm.js", "/dit-wasm/pkg/dit_wasm_bg.wasm"]) {
      assert.ok(fetched.includes(f), `${f} fetched from the package's origin`);
    }
    const d = maxDiff(native({ classLabel: 3, steps: 4, sampler: "ddim", seed: 5, cfg: 4 }, ["--blend", "7", "--alpha", "0.5"]), got);
    console.log(`Firefox, the package from another origin (class 3 blended with 7 at 0.5) vs dit sample: max uint8 difference ${d}`);
    assert.ok(d <= 2, `max difference ${d} > 2`);
  } finally {
    await p.close();
    cdn.close();
    embed.close();
  }
});
