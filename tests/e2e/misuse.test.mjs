// Misuse of the package's API (www/lib, built into dist/), driven in Chromium: the package is imported by a blank
// page of the server's origin (the repository served as is, so /www/lib/dist/index.js and /models/demo/* are both
// there) and used as an app would. Each case must settle every promise with a typed error or a result, leave no
// worker running that should not be (Worker.prototype.terminate is counted), no wedged worker (the next call
// answers), and no half-written Cache Storage entry (every cached shard equals the file served).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { ARGS, chromiumPath, LOAD, repo } from "./browser.mjs";

/** The image every case compares with: a short DDIM run of the demo model. */
const GEN = { classLabels: [1], steps: 5, sampler: "ddim", cfgScale: 4, seed: 3 };

let server, browser, context;
before(async () => {
  server = await serve(repo);
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  context = await browser.newContext();
});
after(async () => {
  await browser?.close();
  server?.close();
});

/**
 * A blank page of the server's origin with the package imported as `window.dit`, counting the workers started and
 * ended, and a few helpers: `load(options)`, `outcome(promise)` ("ok" or the error's kind), `pixels(result)`.
 */
async function openPage() {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.route(`${server.url}/blank.html`, (r) => r.fulfill({ contentType: "text/html", body: "<!doctype html><title>dit-wasm</title>" }));
  await page.addInitScript(() => {
    window.workers = { started: 0, ended: 0 };
    const Base = window.Worker;
    window.Worker = class extends Base {
      constructor(...args) {
        super(...args);
        window.workers.started++;
      }
      terminate() {
        window.workers.ended++;
        super.terminate();
      }
    };
  });
  await page.goto(`${server.url}/blank.html`);
  await page.evaluate(async () => {
    window.dit = await import("/www/lib/dist/index.js");
    window.load = (options = {}) => window.dit.createSampler({ model: "/models/demo/dit", vae: "/models/demo/vae", ...options });
    window.outcome = (p) => p.then(() => "ok", (e) => (e instanceof window.dit.DitError ? e.kind : `untyped: ${e}`));
    window.pixels = (r) => Array.from(r.images[0]);
  });
  return page;
}

/** Whether two pixel arrays are equal, with the largest difference. */
function same(a, b) {
  assert.equal(a.length, b.length, "same image size");
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Every cached weight shard against the file served under its URL: [url, same bytes][]. */
function cacheCheck(page) {
  return page.evaluate(async () => {
    const hex = async (buf) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", buf)), (b) => b.toString(16).padStart(2, "0")).join("");
    const cache = await caches.open(window.dit.CACHE_NAMES.weights);
    const out = [];
    for (const req of await cache.keys()) {
      const cached = await (await cache.match(req)).arrayBuffer();
      const served = await (await fetch(req.url, { cache: "no-store" })).arrayBuffer();
      out.push([new URL(req.url).pathname, (await hex(cached)) === (await hex(served))]);
    }
    return out;
  });
}

const shardRequests = () => [...server.counts].filter(([k]) => k.endsWith(".safetensors")).reduce((a, [, v]) => a + v, 0);

let page;
let reference;

test("generate while another runs: the second waits its turn; both give the images they give alone", async () => {
  page = await openPage();
  await page.evaluate(async () => (window.s = await window.load()));
  const r = await page.evaluate(async (gen) => {
    const order = [];
    const a = window.s.generate({ ...gen, seed: 4 }).then((r) => (order.push("a"), window.pixels(r)));
    const b = window.s.generate(gen).then((r) => (order.push("b"), window.pixels(r)));
    const [pa, pb] = await Promise.all([a, b]);
    const alone = window.pixels(await window.s.generate(gen));
    const aloneA = window.pixels(await window.s.generate({ ...gen, seed: 4 }));
    return { order, pa, pb, alone, aloneA };
  }, GEN);
  reference = r.alone;
  console.log(`two at once: settled in order ${r.order.join(", ")}; max difference from each run alone: ${same(r.pb, r.alone)}, ${same(r.pa, r.aloneA)}`);
  assert.deepEqual(r.order, ["a", "b"], "queued: the first call ends first");
  assert.equal(same(r.pb, r.alone), 0, "the queued generation gives the image it gives alone");
  assert.equal(same(r.pa, r.aloneA), 0);
  assert.ok(same(r.pa, r.pb) > 0, "the two seeds give two images");
});

test("option strings the module does not know: each is an InvalidInputError (none is taken as a default), and the next call works", async () => {
  const r = await page.evaluate(async (gen) => {
    const kinds = {};
    for (const [name, value] of [["f16", "fast"], ["linear", "gpu"], ["limits", "max"], ["cache", "disk"]]) {
      const s = window.load({ [name]: value });
      kinds[`create ${name}: ${value}`] = await window.outcome(s.then((x) => x.dispose()));
    }
    for (const [name, value] of [["sampler", "ddim2"], ["cfgChannels", "some"], ["steps", true]]) {
      kinds[`generate ${name}: ${value}`] = await window.outcome(window.s.generate({ ...gen, [name]: value }));
    }
    return { kinds, next: window.pixels(await window.s.generate(gen)) };
  }, GEN);
  console.log("unknown options:", JSON.stringify(r.kinds));
  for (const [what, kind] of Object.entries(r.kinds)) assert.equal(kind, "invalid-input", what);
  assert.equal(same(r.next, reference), 0, "the sampler still works");
});

test("cancel (AbortSignal) before the start, at every step of a short generation, and while queued: each is an AbortError and the next generate works", async () => {
  const r = await page.evaluate(async (gen) => {
    const kinds = {};
    const before = new AbortController();
    before.abort();
    kinds.before = await window.outcome(window.s.generate({ ...gen, signal: before.signal }));
    for (let k = 1; k <= gen.steps; k++) {
      const c = new AbortController();
      const onStep = (e) => e.step === k && c.abort();
      kinds[`step ${k}`] = await window.outcome(window.s.generate({ ...gen, signal: c.signal, onStep }));
    }
    // Aborted while it waits behind another.
    const q = new AbortController();
    const first = window.s.generate(gen);
    const queued = window.outcome(window.s.generate({ ...gen, signal: q.signal }));
    q.abort();
    kinds.queued = await queued;
    kinds.first = await window.outcome(first);
    const next = window.pixels(await window.s.generate(gen));
    return { kinds, next };
  }, GEN);
  console.log("cancelled:", JSON.stringify(r.kinds));
  for (const [when, kind] of Object.entries(r.kinds)) assert.equal(kind, when === "first" ? "ok" : "aborted", when);
  assert.equal(same(r.next, reference), 0, "the next generation gives the same image as before the cancels");
});

test("dispose during a generate: it rejects with an AbortError, the worker is ended, later calls are refused", async () => {
  const r = await page.evaluate(async (gen) => {
    const ended = window.workers.ended;
    const running = window.outcome(window.s.generate({ ...gen, onStep: (e) => e.step === 2 && window.s.dispose() }));
    const queued = window.outcome(window.s.generate(gen));
    const kinds = { running: await running, queued: await queued };
    kinds.after = await window.outcome(Promise.resolve().then(() => window.s.generate(gen)));
    return { kinds, ended: window.workers.ended - ended };
  }, GEN);
  console.log("dispose during generate:", JSON.stringify(r));
  assert.deepEqual(r.kinds, { running: "aborted", queued: "aborted", after: "invalid-input" });
  assert.equal(r.ended, 1, "the worker (and its GPU device) was ended");
});

test("dispose during a load (its AbortSignal): it rejects with an AbortError, the worker is ended, no cache entry is half-written", async () => {
  await page.evaluate(() => window.dit.clearCache());
  const r = await page.evaluate(async () => {
    const ended = window.workers.ended;
    const out = {};
    // At the first bytes of the first shard, and once the loading has reached the GPU.
    for (const when of ["download", "compile"]) {
      const c = new AbortController();
      const onProgress = (e) => e.phase === when && c.abort();
      out[when] = await window.outcome(window.load({ signal: c.signal, onProgress }));
    }
    return { out, ended: window.workers.ended - ended };
  });
  const cached = await cacheCheck(page);
  console.log("dispose during load:", JSON.stringify(r), "cache:", JSON.stringify(cached));
  assert.deepEqual(r.out, { download: "aborted", compile: "aborted" });
  assert.equal(r.ended, 2, "each load's worker was ended");
  for (const [url, whole] of cached) assert.ok(whole, `${url}: the cached copy equals the file`);
  // A load after them works and gives the same image.
  const px = await page.evaluate(async (gen) => {
    const s = await window.load();
    const px = window.pixels(await s.generate(gen));
    s.dispose();
    return px;
  }, GEN);
  assert.equal(same(px, reference), 0);
});

test("createSampler twice on one page: both work, at the same time, each with its own worker", async () => {
  const r = await page.evaluate(async (gen) => {
    const started = window.workers.started;
    const [a, b] = await Promise.all([window.load(), window.load()]);
    const [pa, pb] = await Promise.all([a.generate(gen), b.generate(gen)]).then((rs) => rs.map(window.pixels));
    const workers = window.workers.started - started;
    a.dispose();
    const still = window.pixels(await b.generate(gen));
    b.dispose();
    return { pa, pb, still, workers };
  }, GEN);
  console.log(`two samplers: ${r.workers} workers; max differences from the reference ${same(r.pa, reference)}, ${same(r.pb, reference)}, ${same(r.still, reference)}`);
  assert.equal(r.workers, 2);
  assert.equal(same(r.pa, reference), 0);
  assert.equal(same(r.pb, reference), 0);
  assert.equal(same(r.still, reference), 0, "disposing one leaves the other working");
});

test("two tabs load the same model at the same time: both succeed, the cache stays whole, a third load downloads nothing", async () => {
  await page.evaluate(() => window.dit.clearCache());
  const tabs = await Promise.all([openPage(), openPage()]);
  const images = await Promise.all(
    tabs.map((t) =>
      t.evaluate(async (gen) => {
        const s = await window.load();
        const px = window.pixels(await s.generate(gen));
        s.dispose();
        return px;
      }, GEN),
    ),
  );
  for (const px of images) assert.equal(same(px, reference), 0, "each tab gives the reference image");
  const cached = await cacheCheck(tabs[0]);
  console.log("cache after two tabs:", JSON.stringify(cached));
  assert.equal(cached.filter(([u]) => u.endsWith(".safetensors")).length, 4, "the four shards are cached");
  for (const [url, whole] of cached) assert.ok(whole, `${url}: the cached copy equals the file`);
  const shards = shardRequests();
  const third = await openPage();
  const px = await third.evaluate(async (gen) => {
    const s = await window.load();
    const px = window.pixels(await s.generate(gen));
    s.dispose();
    return px;
  }, GEN);
  assert.equal(shardRequests(), shards, "the third load read every shard from the cache");
  assert.equal(same(px, reference), 0);
  await Promise.all([...tabs, third].map((t) => t.close()));
});
