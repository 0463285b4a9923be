// The page and the package at WebGPU's default limits (`?limits=default`, the package's `limits: "default"`), as Safari
// and many Android devices give them, in headless Chromium (SwiftShader): the demo model loads on a device opened with
// exactly those limits and gives the image it gives with the adapter's limits; a random-weight DiT-XL/2 forward runs
// there (bench.html, the package's benchForward); a model that cannot fit is refused with an AdapterLimitsError naming
// the limit before any of its weights (or its VAE's) is requested.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { ARGS, chromiumPath, errorKind, generate, repo, site, waitLoaded } from "./browser.mjs";

/** WebGPU's default limits (the spec's "Limits" table). */
const DEFAULTS = {
  max_storage_buffer_binding_size: 128 * 2 ** 20,
  max_buffer_size: 256 * 2 ** 20,
  max_compute_workgroup_storage_size: 16384,
  max_compute_invocations_per_workgroup: 256,
  max_storage_buffers_per_shader_stage: 8,
  max_texture_dimension_2d: 8192,
};

/**
 * Milliseconds the random-weight DiT-XL/2 benchmark may take on SwiftShader: one timed forward (batch 1, no warm-up)
 * and one timed per dispatch, of 675M parameters (9.3 min with a warm-up forward, on 2 busy cores).
 */
const XL_FORWARD = 1_500_000;

let root, server, browser, context;
before(async () => {
  // The built site under /site/, beside model directories that hold only an index (no shards): requests for a shard
  // would show in the server's counts.
  root = fs.mkdtempSync(path.join(os.tmpdir(), "dit-limits-"));
  fs.symlinkSync(site, path.join(root, "site"));
  const indexWith = (demo, config) => {
    const index = JSON.parse(fs.readFileSync(path.join(repo, "models/demo", demo, "model.safetensors.index.json"), "utf8"));
    return JSON.stringify({ ...index, metadata: { ...index.metadata, config } });
  };
  // DiT-S/2 at 1024 px (latent 128) fits WebGPU's default storage binding; the demo VAE decoding a 128x128 latent
  // needs its mid attention's scores, [16384, 16384] f32 (1 GiB), in one binding.
  const s2 = { depth: 12, hidden_size: 384, num_heads: 6, patch_size: 2, in_channels: 4, learn_sigma: true, num_classes: 1000, input_size: 128, mlp_ratio: 4.0 };
  for (const [dir, demo, config] of [["s2-1024", "dit", s2], ["vae", "vae", null]]) {
    fs.mkdirSync(path.join(root, "toobig", dir), { recursive: true });
    const cfg = config ?? JSON.parse(fs.readFileSync(path.join(repo, "models/demo/vae/model.safetensors.index.json"), "utf8")).metadata.config;
    fs.writeFileSync(path.join(root, "toobig", dir, "model.safetensors.index.json"), indexWith(demo, cfg));
  }
  server = await serve(root);
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  context = await browser.newContext();
});
after(async () => {
  await browser?.close();
  server?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

async function open(query) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.goto(`${server.url}/site/${query}`);
  await waitLoaded(page);
  return page;
}

/** The device's limits as the page's sampler reports them. */
const adapterOf = (page) => page.evaluate(() => window.__ditStats.adapter);

function assertDefaults(adapter) {
  assert.equal(adapter.limits, "default");
  for (const [k, v] of Object.entries(DEFAULTS)) assert.equal(adapter[k], v, k);
}

test("the demo model at ?limits=default: a device with WebGPU's defaults, the same image as with the adapter's limits", async () => {
  const settings = { steps: 10, sampler: "ddim", seed: 11, cfg: 4, classLabel: 3 };
  const images = {};
  for (const limits of ["default", "adapter"]) {
    const page = await open(limits === "default" ? "?model=demo&limits=default" : "?model=demo");
    assert.equal(await errorKind(page), null);
    const adapter = await adapterOf(page);
    console.log(`${limits}: binding ${adapter.max_storage_buffer_binding_size}, buffer ${adapter.max_buffer_size}, ` +
      `workgroup storage ${adapter.max_compute_workgroup_storage_size}, textures ${adapter.max_texture_dimension_2d}`);
    if (limits === "default") assertDefaults(adapter);
    else assert.equal(adapter.limits, "adapter");
    images[limits] = await generate(page, settings);
    await page.close();
  }
  let d = 0;
  for (let i = 0; i < images.default.length; i++) d = Math.max(d, Math.abs(images.default[i] - images.adapter[i]));
  console.log(`demo image at default vs adapter limits: max difference ${d} levels of 255`);
  assert.ok(d <= 1, `the images differ by ${d} levels`);
});

test("a model that cannot fit WebGPU's defaults is an AdapterLimitsError naming the limit, before any shard", async () => {
  const page = await open("?limits=default&model=/toobig/s2-1024&vae=/toobig/vae");
  const err = await errorKind(page);
  console.log(err);
  assert.equal(err?.kind, "adapter-limits");
  assert.match(err.text, /VAE attention scores \[16384, 16384\].*maxStorageBufferBindingSize/);
  const requested = [...server.counts.keys()].filter((k) => k.startsWith("/toobig/"));
  console.log("requested:", requested);
  assert.ok(requested.includes("/toobig/s2-1024/model.safetensors.index.json") && requested.includes("/toobig/vae/model.safetensors.index.json"));
  assert.deepEqual(requested.filter((k) => k.endsWith(".safetensors")), [], "no shard may be requested");
  await page.close();
  // With the adapter's limits the check passes where the adapter's binding holds the scores (SwiftShader's: 1 GiB),
  // and the load goes on to the shards (absent here).
  const adapter = await open("?model=/toobig/s2-1024&vae=/toobig/vae");
  const other = await errorKind(adapter);
  console.log("adapter limits:", other);
  if (other?.kind === "adapter-limits") console.log("this adapter's own binding limit refuses it too");
  else assert.ok([...server.counts.keys()].some((k) => k.startsWith("/toobig/") && k.endsWith(".safetensors")));
  await adapter.close();
});

test("a random-weight DiT-XL/2 forward at limits: default (bench.html, benchForward)", async () => {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.goto(`${server.url}/site/bench.html?forward=XL/2&res=256&batch=1&repeat=1&warmup=0&limits=default`);
  await page.waitForFunction(() => !document.getElementById("result").hidden, null, { timeout: XL_FORWARD });
  const r = JSON.parse(await page.locator("#result").textContent());
  console.log(await page.locator("#status").textContent());
  assert.equal(r.error, undefined, r.message);
  assert.equal(r.model, "XL/2");
  assert.equal(r.latent, 32);
  assert.equal(r.output_finite, true);
  assertDefaults(r.bench.adapter);
  await page.close();
});
