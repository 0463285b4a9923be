// End-to-end tests of the weight cache under storage faults, in Chromium on the built page (www/demo): a cache entry
// damaged on disk, a cache of an older version and a manifest of an older layout, a storage quota too small for the
// model, a reload in the middle of a download, two tabs loading the same model at once. Both ways weights are cached
// are covered: the shards of a model directory (the demo model; each checked against the sha256 of its index) and the
// fp16 tensors of an `hf://` repo read by ranges (through the stand-in tests/e2e/hub-server.mjs; each checked against
// the sha256 that the model's manifest recorded when it was stored). The tests share one profile, whose Cache Storage
// is what they inspect (checked from the page with crypto.subtle, independently of the wasm's own checks). Each test
// loads its model under its own URL (`/faulty/<tag>/demo/...`, served as is unless the tag is a fault of server.mjs),
// so that their cache entries are apart.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { errorKind, generate, hubSession, LOAD, repo, waitLoaded } from "./browser.mjs";

const WEIGHTS_CACHE = "dit-wasm-weights-v1";
/** One image of class 3 (the demo model and the hub fixtures both have 10 classes): 4 DPM-Solver++ steps, seed 7. */
const RUN = { steps: 4, classLabel: 3 };
const WEIGHTS = /diffusion_pytorch_model\.(bin|safetensors)$/;
const fixtures = path.join(repo, "tests/fixtures");

let session, site, hub, context, root;

/** Repos of the stand-in: safetensors pipelines (`transformer/`, `vae/`) of the tiny diffusers fixtures. */
function makeRepos() {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "dit-storage-"));
  for (const name of ["DiT-st-damaged", "DiT-st-two"]) {
    const dir = path.join(root, "test", name);
    fs.mkdirSync(path.join(dir, "transformer"), { recursive: true });
    fs.mkdirSync(path.join(dir, "vae"));
    fs.copyFileSync(path.join(fixtures, "hub/DiT-tiny/model_index.json"), path.join(dir, "model_index.json"));
    for (const f of ["config.json", "diffusion_pytorch_model.safetensors"]) {
      fs.copyFileSync(path.join(fixtures, "dit_formats/diffusers", f), path.join(dir, "transformer", f));
      fs.copyFileSync(path.join(fixtures, "vae_small", f), path.join(dir, "vae", f));
    }
  }
}

before(async () => {
  makeRepos();
  session = await hubSession(root);
  ({ site, hub, context } = session);
});
after(async () => {
  await session?.close();
});

const demoAt = (tag, vae) => `?model=./faulty/${tag}/demo/dit&vae=${encodeURIComponent(vae ?? `./faulty/${tag}/demo/vae`)}&endpoint=${encodeURIComponent(hub.url)}`;
/** The part of the cache keys of the transformer of `test/<name>` (endpoint|repo|commit|subfolder|component). */
const transformerKey = (name) => `test/${name}|${hub.commitOf(`test/${name}`)}||transformer/`;
const hubAt = (model) => `?model=${encodeURIComponent(model)}&endpoint=${encodeURIComponent(hub.url)}`;

async function open(query) {
  const p = await context.newPage();
  p.on("pageerror", (e) => console.log("page error:", e.message));
  await p.goto(`${site.url}/${query}`);
  await waitLoaded(p);
  return p;
}

async function reload(p) {
  await p.reload();
  await waitLoaded(p);
}

const notices = (p) => p.evaluate(() => window.__ditStats.notices);

/** Requests the site server answered for the shards under `/faulty/<tag>/`, by file. */
function shardRequests(tag) {
  const out = {};
  for (const [k, v] of site.counts) if (k.startsWith(`/faulty/${tag}/`) && k.endsWith(".safetensors")) out[k.slice(`/faulty/${tag}/`.length)] = v;
  return out;
}

/** Weight bytes the stand-in sent per file since its last reset. */
function weightBytes() {
  return Object.fromEntries(Object.entries(hub.stats().files).filter(([f]) => WEIGHTS.test(f)).map(([f, s]) => [f, s.bytes]));
}

/**
 * The weights cache's entries whose (decoded) URL contains `part`, each checked in the page: a shard against the
 * sha256 in its model's index (asked of the server), a cached model's tensors against its manifest. Returns
 * {shards: [{url, ok}], models: [{url, format, tensors, bad, entries}]} (`entries`: the model's tensor entries, which
 * a valid model has exactly as many of as its manifest lists).
 */
function audit(p, part) {
  return p.evaluate(
    async ([name, part]) => {
      const hex = async (buf) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", buf))].map((b) => b.toString(16).padStart(2, "0")).join("");
      const c = await caches.open(name);
      const keys = (await c.keys()).map((r) => r.url).filter((u) => decodeURIComponent(decodeURIComponent(u)).includes(part));
      const out = { shards: [], models: [] };
      for (const url of keys) {
        if (url.endsWith(".safetensors")) {
          const dir = url.slice(0, url.lastIndexOf("/"));
          const index = await (await fetch(`${dir}/model.safetensors.index.json`, { cache: "no-store" })).json();
          const want = index.metadata.shards[url.slice(dir.length + 1)]?.sha256;
          out.shards.push({ url: url.slice(url.indexOf("/faulty/")), ok: want === (await hex(await (await c.match(url)).arrayBuffer())) });
        } else if (url.endsWith("/manifest")) {
          const prefix = url.slice(0, -"manifest".length);
          const m = await (await c.match(url)).json();
          let bad = 0;
          for (const t of m.tensors) {
            const r = await c.match(`${prefix}${encodeURIComponent(m.file)}/${encodeURIComponent(t.name ?? t[0])}`);
            if (!r || !t.sha256 || (await hex(await r.arrayBuffer())) !== t.sha256) bad++;
          }
          const entries = keys.filter((k) => k.startsWith(prefix) && k !== url).length;
          out.models.push({ url: decodeURIComponent(url), format: m.format, tensors: m.tensors.length, bad, entries });
        }
      }
      return out;
    },
    [WEIGHTS_CACHE, part],
  );
}

/**
 * Overwrites, from the page through the Cache API, the entry whose decoded URL contains `part` (and, for a cached
 * model, whose tensor is the largest one of the manifest naming `part`): the same length and headers, every second
 * byte from the middle on flipped (an fp16 weight's high byte, so that a copy used anyway changes the image).
 */
function damage(p, part) {
  return p.evaluate(
    async ([name, part]) => {
      const c = await caches.open(name);
      const keys = (await c.keys()).map((r) => r.url);
      let url = keys.find((u) => decodeURIComponent(decodeURIComponent(u)).includes(part) && !u.endsWith("/manifest"));
      const manifest = keys.find((u) => decodeURIComponent(decodeURIComponent(u)).includes(part) && u.endsWith("/manifest"));
      if (manifest) {
        const m = await (await c.match(manifest)).json();
        const big = m.tensors.reduce((a, t) => (t.shape.reduce((x, y) => x * y, 1) > a.shape.reduce((x, y) => x * y, 1) ? t : a));
        url = `${manifest.slice(0, -"manifest".length)}${encodeURIComponent(m.file)}/${encodeURIComponent(big.name)}`;
      }
      const old = await c.match(url);
      const bytes = new Uint8Array(await old.arrayBuffer());
      for (let i = (bytes.length >> 1) | 1; i < bytes.length; i += 2) bytes[i] ^= 0x40;
      await c.put(url, new Response(bytes, { headers: old.headers }));
      return decodeURIComponent(decodeURIComponent(url));
    },
    [WEIGHTS_CACHE, part],
  );
}

let demoPixels;

test("a shard damaged in Cache Storage is found by its sha256, deleted and downloaded again; the image is the clean load's", async () => {
  const p = await open(demoAt("damaged"));
  assert.equal(await errorKind(p), null, "no error");
  demoPixels = await generate(p, RUN);
  const clean = await audit(p, "/faulty/damaged/");
  assert.equal(clean.shards.length, 4, "the DiT's 3 shards and the VAE's 1 are cached");
  assert.ok(clean.shards.every((s) => s.ok), JSON.stringify(clean.shards));
  const shard = "demo/dit/model-00002-of-00003.safetensors";
  console.log("damaged:", await damage(p, `/faulty/damaged/${shard}`));
  assert.equal((await audit(p, `/faulty/damaged/${shard}`)).shards[0].ok, false, "the entry no longer matches its sha256");
  const before = shardRequests("damaged");
  await reload(p);
  assert.equal(await errorKind(p), null, "no error");
  const after = shardRequests("damaged");
  console.log("notices:", await notices(p), "shard requests before/after the reload:", before, after);
  assert.ok((await notices(p)).some((n) => n.includes(shard.split("/").at(-1)) && /does not match the sha256/.test(n)), "a notice names the damaged shard");
  for (const f of Object.keys(after)) assert.equal(after[f] - before[f], f === shard ? 1 : 0, `${f}: ${f === shard ? "downloaded again" : "read from the cache"}`);
  assert.ok((await audit(p, "/faulty/damaged/")).shards.every((s) => s.ok), "every cached shard matches its sha256 again");
  assert.deepEqual(await generate(p, RUN), demoPixels, "the same image as the clean load");
  await p.close();
});

let hubPage, hubPixels;

test("an hf:// model's tensor damaged in Cache Storage is found by the sha256 its manifest recorded, deleted and downloaded again", async () => {
  hubPage = await open(hubAt("hf://test/DiT-st-damaged"));
  assert.equal(await errorKind(hubPage), null, "no error");
  hubPixels = await generate(hubPage, RUN);
  const clean = await audit(hubPage, "test/DiT-st-damaged|");
  console.log("cached models:", clean.models);
  assert.equal(clean.models.length, 2, "the transformer and the VAE are cached");
  assert.ok(clean.models.every((m) => m.format === 2 && m.bad === 0 && m.entries === m.tensors), "each tensor matches its manifest");
  console.log("damaged:", await damage(hubPage, transformerKey("DiT-st-damaged")));
  assert.equal((await audit(hubPage, "test/DiT-st-damaged|")).models.reduce((a, m) => a + m.bad, 0), 1, "one tensor no longer matches");
  hub.resetStats();
  await reload(hubPage);
  assert.equal(await errorKind(hubPage), null, "no error");
  const bytes = weightBytes();
  console.log("notices:", await notices(hubPage), "weight bytes sent:", bytes);
  assert.ok((await notices(hubPage)).some((n) => /failed its check/.test(n)), "a notice says the cached copy failed its check");
  assert.ok(bytes["test/DiT-st-damaged/transformer/diffusion_pytorch_model.safetensors"] > 0, "the transformer was downloaded again");
  assert.ok(!bytes["test/DiT-st-damaged/vae/diffusion_pytorch_model.safetensors"], "the VAE came from the cache");
  const again = await audit(hubPage, "test/DiT-st-damaged|");
  assert.ok(again.models.length === 2 && again.models.every((m) => m.bad === 0 && m.entries === m.tensors), JSON.stringify(again.models));
  assert.deepEqual(await generate(hubPage, RUN), hubPixels, "the same image as the clean load");
});

test("a cache of an older version is deleted, and a manifest of an older layout (no hashes) is never trusted", async () => {
  const p = hubPage;
  console.log("damaged:", await damage(p, transformerKey("DiT-st-damaged")));
  // An earlier version's bucket, holding garbage under a shard's URL; and the transformer's manifest rewritten in the
  // layout of before (tensors as [name, shape], no format, no hashes) over a damaged tensor: trusted, it would
  // change the image.
  const rewritten = await p.evaluate(async ([name, part]) => {
    const v0 = await caches.open("dit-wasm-weights-v0");
    await v0.put(`${location.origin}/faulty/damaged/demo/dit/model-00001-of-00003.safetensors`, new Response(new Uint8Array(1000)));
    const c = await caches.open(name);
    const url = (await c.keys()).map((r) => r.url).find((u) => decodeURIComponent(decodeURIComponent(u)).includes(part) && u.endsWith("/manifest"));
    const m = await (await c.match(url)).json();
    await c.put(url, new Response(JSON.stringify({ file: m.file, index: m.index, tensors: m.tensors.map((t) => [t.name, t.shape]) })));
    return decodeURIComponent(decodeURIComponent(url));
  }, [WEIGHTS_CACHE, transformerKey("DiT-st-damaged")]);
  console.log("manifest of the old layout:", rewritten);
  assert.ok((await p.evaluate(() => caches.keys())).includes("dit-wasm-weights-v0"));
  hub.resetStats();
  await reload(p);
  assert.equal(await errorKind(p), null, "no error");
  const bytes = weightBytes();
  const buckets = await p.evaluate(() => caches.keys());
  console.log("notices:", await notices(p), "weight bytes sent:", bytes, "buckets:", buckets);
  assert.ok(!buckets.includes("dit-wasm-weights-v0"), "the older version's bucket is deleted");
  assert.ok(buckets.includes(WEIGHTS_CACHE));
  assert.ok((await notices(p)).some((n) => /older layout/.test(n)), "a notice says so");
  assert.ok(bytes["test/DiT-st-damaged/transformer/diffusion_pytorch_model.safetensors"] > 0, "the transformer was downloaded again");
  const again = await audit(p, "test/DiT-st-damaged|");
  assert.ok(again.models.length === 2 && again.models.every((m) => m.format === 2 && m.bad === 0 && m.entries === m.tensors), JSON.stringify(again.models));
  assert.deepEqual(await generate(p, RUN), hubPixels, "the same image as the clean load");
  await p.close();
});

test("a quota too small for the model: the page generates, a notice says the weights are not kept, the next visit downloads again", async () => {
  const p = await context.newPage();
  await p.goto(`${site.url}/no-such-page`);
  const { usage } = await p.evaluate(() => navigator.storage.estimate());
  const cdp = await context.newCDPSession(p);
  // Room for the index files, not for a shard (the smallest is 184 kB).
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: site.url, quotaSize: usage + 50_000 });
  try {
    await p.goto(`${site.url}/${demoAt("quota")}`);
    await waitLoaded(p);
    assert.equal(await errorKind(p), null, "no error");
    console.log("notices:", await notices(p));
    assert.ok((await notices(p)).some((n) => /not kept whole for the next visit/.test(n) && /QuotaExceeded|quota/i.test(n)), "a notice says the weights are not kept");
    assert.ok(await p.locator("[data-testid=notice]").isVisible(), "the page shows it");
    assert.deepEqual(await generate(p, RUN), demoPixels, "the image of the clean load");
    const first = await audit(p, "/faulty/quota/");
    assert.ok(first.shards.every((s) => s.ok), "whatever was kept matches its sha256");
    const before = shardRequests("quota");
    await reload(p);
    assert.equal(await errorKind(p), null, "no error on the next visit");
    const after = shardRequests("quota");
    const kept = first.shards.map((s) => s.url.slice("/faulty/quota/".length));
    console.log("kept:", kept, "shard requests before/after the next visit:", before, after);
    for (const f of Object.keys(after)) assert.equal(after[f] - before[f], kept.includes(f) ? 0 : 1, `${f} ${kept.includes(f) ? "from the cache" : "downloaded again"}`);
    assert.ok(kept.length < 4, "not every shard was kept");
    assert.deepEqual(await generate(p, RUN), demoPixels, "the same image on the next visit");
  } finally {
    await cdp.send("Storage.overrideQuotaForOrigin", { origin: site.url });
  }
  await p.close();
});

test("a page left in the middle of a download leaves no entry a later visit would trust; loading again gives the clean image", async () => {
  // slowonce: each file's first request is sent in 64 KiB pieces 100 ms apart (the 4 MB shards take about 6 s).
  const p = await context.newPage();
  await p.goto(`${site.url}/${demoAt("slowonce")}`);
  const shard = "demo/dit/model-00002-of-00003.safetensors";
  const t0 = Date.now();
  while (!shardRequests("slowonce")[shard] && Date.now() - t0 < LOAD) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 2500));
  // Leave the page mid-download (its worker ends with it), for a page of the same origin that loads nothing.
  await p.goto(`${site.url}/no-such-page`);
  const left = await audit(p, "/faulty/slowonce/");
  const cut = shardRequests("slowonce");
  console.log("requests when the page was left:", cut, "entries left:", left.shards);
  assert.ok(left.shards.length < 4, "the download was cut before every shard arrived");
  assert.ok(left.shards.every((s) => s.ok), "every entry left is whole and matches its sha256");
  await p.goto(`${site.url}/${demoAt("slowonce")}`);
  await waitLoaded(p);
  assert.equal(await errorKind(p), null, "no error");
  const n = await notices(p);
  const again = shardRequests("slowonce");
  console.log("loaded again; notices:", n, "requests:", again);
  assert.ok(!n.some((x) => /does not match/.test(x)), "no damaged entry was met");
  const kept = left.shards.map((s) => s.url.slice("/faulty/slowonce/".length));
  for (const f of Object.keys(cut)) assert.equal(again[f] - cut[f], kept.includes(f) ? 0 : 1, `${f}: ${kept.includes(f) ? "kept whole" : "cut, so asked for again"}`);
  assert.deepEqual(await generate(p, RUN), demoPixels, "the image of the clean load");
  assert.ok((await audit(p, "/faulty/slowonce/")).shards.every((s) => s.ok));
  // An hf:// load cut short leaves tensors without their manifest (written last): here the transformer's, one of them
  // damaged. They must not be read; the next load downloads the transformer again.
  await p.goto(`${site.url}/no-such-page`);
  await damage(p, transformerKey("DiT-st-damaged"));
  await p.evaluate(async ([name, part]) => {
    const c = await caches.open(name);
    const url = (await c.keys()).map((r) => r.url).find((u) => decodeURIComponent(decodeURIComponent(u)).includes(part) && u.endsWith("/manifest"));
    await c.delete(url);
  }, [WEIGHTS_CACHE, transformerKey("DiT-st-damaged")]);
  hub.resetStats();
  await p.goto(`${site.url}/${hubAt("hf://test/DiT-st-damaged")}`);
  await waitLoaded(p);
  assert.equal(await errorKind(p), null, "no error");
  const bytes = weightBytes();
  console.log("hf:// tensors left without a manifest; loaded again: weight bytes sent", bytes);
  assert.ok(bytes["test/DiT-st-damaged/transformer/diffusion_pytorch_model.safetensors"] > 0, "the transformer was downloaded again");
  const models = (await audit(p, "test/DiT-st-damaged|")).models;
  assert.ok(models.length === 2 && models.every((m) => m.bad === 0 && m.entries === m.tensors), JSON.stringify(models));
  assert.deepEqual(await generate(p, RUN), hubPixels, "the image of the clean load");
  await p.close();
});

test("two tabs loading the same models at once both succeed and the cache ends valid (a third load downloads nothing)", async () => {
  // The DiT from a model directory (shards) and the VAE from an hf:// pipeline (tensors): both ways of caching.
  const query = demoAt("twotabs", "hf://test/DiT-st-two");
  hub.resetStats();
  const [a, b] = await Promise.all([context.newPage(), context.newPage()]);
  await Promise.all([a.goto(`${site.url}/${query}`), b.goto(`${site.url}/${query}`)]);
  await Promise.all([waitLoaded(a), waitLoaded(b)]);
  assert.equal(await errorKind(a), null, "no error in the first tab");
  assert.equal(await errorKind(b), null, "no error in the second tab");
  const requests = shardRequests("twotabs");
  console.log("both tabs loaded; shard requests:", requests, "hub weight bytes:", weightBytes());
  const pa = await generate(a, RUN);
  assert.deepEqual(await generate(b, RUN), pa, "both tabs give the same image");
  const shards = await audit(a, "/faulty/twotabs/");
  const models = await audit(a, "test/DiT-st-two|");
  console.log("cached:", shards.shards, models.models);
  assert.ok(shards.shards.length === 3 && shards.shards.every((s) => s.ok), "the DiT's shards are cached and valid");
  assert.ok(models.models.length === 1 && models.models.every((m) => m.format === 2 && m.bad === 0 && m.entries === m.tensors), "the VAE is cached and valid");
  await Promise.all([a.close(), b.close()]);
  hub.resetStats();
  const c = await open(query);
  assert.equal(await errorKind(c), null, "no error");
  const hubBytes = Object.values(weightBytes()).reduce((x, y) => x + y, 0);
  console.log("third load: shard requests", shardRequests("twotabs"), "hub weight bytes", hubBytes);
  assert.deepEqual(shardRequests("twotabs"), requests, "no shard was requested");
  assert.equal(hubBytes, 0, "no hub weight byte was sent");
  assert.deepEqual(await generate(c, RUN), pa, "the same image from the cache");
  await c.close();
});
