// End-to-end tests of `hf://` locations on the page (www/demo, built), through the Hub stand-in (hub-server.mjs: a
// 302 to a CDN on another origin, the CDN's CORS headers, a refused Range preflight, single ranges only, faults).
// The repos are the tiny models of tests/fixtures/hub in the official layout (legacy config, torch .bin with each
// block's copy of the embedders, the VAE's .bin with its encoder) and pipelines with safetensors components.
// Chromium's WebGPU adapter here is SwiftShader (CPU): each load compiles the pipelines, so the tests share one
// browser context (one profile: its Cache Storage is the cache under test) and load as few times as they can.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { errorKind, generate, hubSession, maxDiff, nativeSample, repo, site, waitLoaded } from "./browser.mjs";

/** One image of class 3: 10 DPM-Solver++ steps, guidance 4, seed 7 (the settings of the native runs compared). */
const HUB_RUN = { steps: 10, classLabel: 3 };

const fixtures = path.join(repo, "tests/fixtures");
const WEIGHTS = /diffusion_pytorch_model\.(bin|safetensors)$/;

let page, hub, browser, context, root;

/** The transformer of the safetensors pipelines: a diffusers DiT (1 head of 72, latent 16, 10 classes). */
const ditSt = path.join(fixtures, "dit_formats/diffusers");

/** Repos of the stand-in: `test/<name>` -> a folder: the official-layout fixtures, and safetensors pipelines. */
function makeRepos() {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "dit-hub-"));
  const owner = path.join(root, "test");
  fs.mkdirSync(owner);
  const tiny = path.join(fixtures, "hub/DiT-tiny");
  for (const name of ["DiT-tiny", "DiT-tiny-again", "DiT-tiny-gated"]) fs.symlinkSync(tiny, path.join(owner, name));
  for (const name of ["PixArt-tiny", "DiT-truncated", "DiT-evil"]) fs.symlinkSync(path.join(fixtures, "hub", name), path.join(owner, name));
  for (const name of ["DiT-st", "DiT-st-drop", "DiT-st-norange", "DiT-st-quota"]) {
    const dir = path.join(owner, name);
    fs.mkdirSync(path.join(dir, "transformer"), { recursive: true });
    fs.mkdirSync(path.join(dir, "vae"));
    fs.copyFileSync(path.join(tiny, "model_index.json"), path.join(dir, "model_index.json"));
    for (const f of ["config.json", "diffusion_pytorch_model.safetensors"]) fs.copyFileSync(path.join(ditSt, f), path.join(dir, "transformer", f));
    fs.copyFileSync(path.join(fixtures, "vae_small/config.json"), path.join(dir, "vae/config.json"));
    fs.copyFileSync(path.join(fixtures, "vae_small/diffusion_pytorch_model.safetensors"), path.join(dir, "vae/diffusion_pytorch_model.safetensors"));
  }
}

let session, site_;
before(async () => {
  makeRepos();
  session = await hubSession(root);
  ({ site: site_, hub, browser, context } = session);
});
after(async () => {
  await session?.close();
});

const at = (model, extra = "") => `?model=${encodeURIComponent(model)}&endpoint=${encodeURIComponent(hub.url)}${extra}`;

async function open(query) {
  const p = await context.newPage();
  p.on("pageerror", (e) => console.log("page error:", e.message));
  await p.goto(`${site_.url}/${query}`);
  await waitLoaded(p);
  return p;
}

/** Weight bytes the stand-in sent per file since the last reset. */
function weightBytes() {
  return Object.fromEntries(Object.entries(hub.stats().files).filter(([f]) => WEIGHTS.test(f)).map(([f, s]) => [f, s.bytes]));
}

/** Keys of the page's Cache Storage entries that name `repoName`. */
async function cachedKeys(p, repoName) {
  return p.evaluate(async (r) => {
    const out = [];
    for (const name of await caches.keys()) {
      const c = await caches.open(name);
      for (const req of await c.keys()) if (decodeURIComponent(decodeURIComponent(req.url)).includes(r)) out.push(req.url);
    }
    return out;
  }, repoName);
}

/** `dit sample` on the same files and settings: [3, H, W] f32 in [-1, 1]. */
function nativeImage(args) {
  return nativeSample([...args, "--class", "3", "--cfg", "4", "--steps", "10", "--sampler", "dpmpp2m", "--seed", "7"]);
}

let firstBytes;

test("?model=hf://<pipeline>&endpoint=<server> loads the official layout (.bin, duplicated embedders not read) and generates what `dit sample` does", async () => {
  hub.resetStats();
  page = await open(at("hf://test/DiT-tiny"));
  assert.equal(await errorKind(page), null, "no error");
  const stats = hub.stats();
  firstBytes = weightBytes();
  console.log("first load, weight bytes sent:", firstBytes);
  const size = (f) => fs.statSync(path.join(fixtures, "hub/DiT-tiny", f)).size;
  const tBytes = firstBytes["test/DiT-tiny/transformer/diffusion_pytorch_model.bin"];
  assert.ok(tBytes > 0 && tBytes < size("transformer/diffusion_pytorch_model.bin"), `the transformer's duplicated embedders are not read (${tBytes} bytes of ${size("transformer/diffusion_pytorch_model.bin")})`);
  const vBytes = firstBytes["test/DiT-tiny/vae/diffusion_pytorch_model.bin"];
  assert.ok(vBytes > 0 && vBytes < size("vae/diffusion_pytorch_model.bin"), "the VAE's encoder is not read");
  // What the browser sent: no preflight, and only single `bytes=N-M` ranges (what the Hub's CDN accepts).
  assert.equal(stats.log.filter((r) => r.method === "OPTIONS").length, 0, "no CORS preflight");
  const ranges = stats.log.filter((r) => r.range).map((r) => r.range);
  assert.ok(ranges.length > 0 && ranges.every((r) => /^bytes=\d+-\d+$/.test(r)), `single ranges only: ${ranges.join(", ")}`);
  assert.ok(stats.log.some((r) => r.origin === "cdn" && r.status === 206), "weights come from the CDN origin after the 302");
  const pixels = await generate(page, HUB_RUN);
  const d = maxDiff(nativeImage(["--model", path.join(fixtures, "hub/DiT-tiny")]), pixels);
  console.log(`browser (hf://test/DiT-tiny) vs native dit sample --model tests/fixtures/hub/DiT-tiny: max uint8 difference ${d}`);
  assert.ok(d <= 2, `max difference ${d} > 2`);
  page.pixels = pixels;
});

test("a second load (same profile) fetches no weight bytes; offline, a reload still generates", async () => {
  hub.resetStats();
  const again = await open(at("hf://test/DiT-tiny"));
  assert.equal(await errorKind(again), null, "no error");
  const bytes = weightBytes();
  console.log("second load, weight bytes sent:", bytes, "page stats:", await again.evaluate(() => window.__ditStats));
  assert.equal(Object.values(bytes).reduce((a, b) => a + b, 0), 0, "no weight bytes");
  const px = await generate(again, HUB_RUN);
  assert.deepEqual(px, page.pixels, "the cached weights give the same image");
  // The page's own files come from its service worker, the weights from Cache Storage.
  await again.waitForFunction(() => navigator.serviceWorker?.controller, null, { timeout: 60_000 });
  hub.resetStats();
  await context.setOffline(true);
  try {
    await again.reload();
    await waitLoaded(again);
    assert.equal(await errorKind(again), null, "no error offline");
    const off = await generate(again, HUB_RUN);
    assert.deepEqual(off, page.pixels, "offline: the same image");
    console.log("offline reload: generated; requests that reached the stand-in:", hub.stats().requests);
  } finally {
    await context.setOffline(false);
  }
  await again.close();
});

test("a dropped connection resumes from the byte it reached, not from zero", async () => {
  const file = "test/DiT-st-drop/transformer/diffusion_pytorch_model.safetensors";
  const size = fs.statSync(path.join(root, file)).size;
  const cut = Math.floor(size / 3);
  hub.resetStats();
  // The stand-in's `dropAfter` cuts the next body of the file, which would be the 8-byte head of the file: it is armed
  // instead for the first request whose range is longer than the cut (the tensor data), through the live fault state.
  const faults = hub.control({ reset: true });
  faults.dropAfter = new Proxy({}, {
    has: (_, key) => {
      if (key !== file) return false;
      const last = hub.stats().log.at(-1)?.range?.match(/^bytes=(\d+)-(\d+)$/);
      return Boolean(last) && Number(last[2]) - Number(last[1]) + 1 > cut && !faults.dropped;
    },
    get: (_, key) => (key === file ? cut : undefined),
    deleteProperty: () => (faults.dropped = true),
  });
  const p = await open(at("hf://test/DiT-st-drop"));
  assert.equal(await errorKind(p), null, "no error");
  const sent = weightBytes()[file];
  const requests = hub.stats().log.filter((r) => r.origin === "cdn" && r.url.endsWith("transformer/diffusion_pytorch_model.safetensors"));
  const ranges = requests.map((r) => r.range.match(/^bytes=(\d+)-(\d+)$/).slice(1).map(Number));
  console.log(`dropped after ${cut} bytes of a part: ${sent} bytes sent in all for a ${size}-byte file;`, requests.map((r) => r.range).join(", "));
  assert.ok(faults.dropped, "the connection was dropped");
  const long = ranges.findIndex(([a, b]) => b - a + 1 > cut);
  assert.ok(long >= 0 && ranges[long + 1]?.[0] === ranges[long][0] + cut && ranges[long + 1][1] === ranges[long][1], "the next request asks for the rest of the part, from the byte reached");
  assert.ok(sent <= size, `${sent} bytes sent for ${size}: nothing was fetched twice`);
  const px = await generate(p, HUB_RUN);
  const d = maxDiff(nativeImage(["--model", path.join(ditSt, "diffusion_pytorch_model.safetensors"), "--vae", path.join(fixtures, "vae_small/diffusion_pytorch_model.safetensors")]), px);
  console.log(`browser (hf://test/DiT-st-drop, safetensors) vs native: max uint8 difference ${d}`);
  assert.ok(d <= 2, `max difference ${d} > 2`);
  await p.close();
});

test("bad repos are typed errors and leave nothing cached: 404, gated (401/403), another architecture, a truncated .bin, a disallowed pickle global, a server ignoring Range", async () => {
  hub.control({ reset: true, ignoreRange: ["test/DiT-st-norange/transformer/diffusion_pytorch_model.safetensors"], gated: { "test/DiT-tiny-gated": { status: 403 } } });
  for (const [repoName, kind, text] of [
    ["test/no-such-repo", "not-found", /404/],
    ["test/DiT-tiny-gated", "gated", /gated/],
    ["test/PixArt-tiny", "invalid-input", /PixArt|ada_norm_single/i],
    ["test/DiT-truncated", "integrity", /truncated/i],
    ["test/DiT-evil", "integrity", /os|system|global/i],
    ["test/DiT-st-norange", "download", /Range/],
  ]) {
    const p = await open(at(`hf://${repoName}`));
    const e = await errorKind(p);
    console.log(`hf://${repoName} ->`, e);
    assert.ok(e, `hf://${repoName}: an error`);
    assert.equal(e.kind, kind, `hf://${repoName}`);
    assert.match(e.text, text);
    assert.deepEqual(await cachedKeys(p, `${repoName}|`), [], `hf://${repoName}: nothing cached`);
    await p.close();
  }
  hub.control({ reset: true });
  // 401 (no token) also says gated.
  hub.control({ gated: { "test/DiT-tiny-gated": { status: 401 } } });
  const p = await open(at("hf://test/DiT-tiny-gated"));
  const e = await errorKind(p);
  console.log("hf://test/DiT-tiny-gated (401) ->", e);
  assert.equal(e?.kind, "gated");
  await p.close();
  hub.control({ reset: true });
});

// Chromium's quota override makes the writes fail but leaves navigator.storage.estimate() as it was, so this covers
// the refused writes; the estimate checked before the download takes the same way out (TensorCache::ensure_room).
test("where the storage cannot hold the model (writes refused over the quota), it loads uncached with a visible notice", async () => {
  const p = await context.newPage();
  await p.goto(`${site_.url}/?endpoint=${encodeURIComponent(hub.url)}`);
  await p.waitForFunction(() => navigator.serviceWorker?.controller, null, { timeout: 60_000 });
  const { usage } = await p.evaluate(() => navigator.storage.estimate());
  const cdp = await context.newCDPSession(p);
  // Room for less than the model's fp16 weights (the transformer alone needs about 250 kB).
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: site_.url, quotaSize: usage + 50_000 });
  try {
    hub.resetStats();
    await p.goto(`${site_.url}/${at("hf://test/DiT-st-quota")}`);
    await waitLoaded(p);
    assert.equal(await errorKind(p), null, "no error");
    const notice = await p.locator("[data-testid=notice]");
    assert.ok(await notice.isVisible(), "a notice is shown");
    console.log("notice:", await notice.textContent());
    assert.match(await notice.textContent(), /not kept for the next visit/);
    assert.ok(Object.values(weightBytes()).reduce((a, b) => a + b, 0) > 0, "weights were downloaded");
    await generate(p, HUB_RUN);
    assert.deepEqual(await cachedKeys(p, "test/DiT-st-quota|"), [], "nothing cached");
  } finally {
    await cdp.send("Storage.overrideQuotaForOrigin", { origin: site_.url });
  }
  await p.close();
});

test("the page offers the official DiT-XL/2 repos with their download size, before any download", async () => {
  const p = await context.newPage();
  await p.goto(`${site_.url}/?endpoint=${encodeURIComponent(hub.url)}`);
  const options = await p.locator("[data-testid=model-select] option").allTextContents();
  assert.ok(options.some((o) => /facebook\/DiT-XL-2-256/.test(o)) && options.some((o) => /facebook\/DiT-XL-2-512/.test(o)), options.join(" | "));
  await p.selectOption("[data-testid=model-select]", "hf-256");
  const size = await p.locator("[data-testid=model-size]").textContent();
  console.log("DiT-XL/2 256:", size);
  assert.match(size, /2\.90 GB/);
  await p.close();
});
