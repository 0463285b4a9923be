// Full-size load of a Hub repo in headless Chromium: the page (www/demo/dist, built) opens
// `?model=hf://OWNER/NAME&endpoint=<stand-in Hub>` and loads the model from the stand-in Hub (tests/e2e/hub-server.mjs:
// the 302 to a CDN on another origin, single Range requests). Measures, for a first load into a fresh profile and a
// second load in the same profile (from the cache):
//   - the load time (from navigation until Generate is enabled, or an error shows);
//   - the bytes the stand-in sent (per file, from its request log), to compare with the files' sizes: the per-block
//     copies of the embedders and the VAE's encoder should not be downloaded;
//   - the peak JS heap: every 250 ms, Runtime.getHeapUsage on the page and on each of its workers (raw CDP through
//     the browser's debugging port: the page's and its workers' sessions, auto-attached), used size and the
//     ArrayBuffer backing stores, summed over the targets.
// Generation is not measured (SwiftShader takes minutes per step at 256 px): the point is the load.
// A repo: python3 tools/make_synthetic_hub.py /tmp/hub-xl/facebook/DiT-XL-2-256. Build first: scripts/build-site.sh.
// Usage: node --experimental-websocket tools/bench/hub_full.mjs [--root /tmp/hub-xl] [--model hf://facebook/DiT-XL-2-256]
//        [--timeout-s 1800] [--json]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../../tests/e2e/server.mjs";
import { startHubServer } from "../../tests/e2e/hub-server.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const repo = path.resolve(import.meta.dirname, "../..");
const root = arg("--root", "/tmp/hub-xl");
const model = arg("--model", "hf://facebook/DiT-XL-2-256");
const timeout = Number(arg("--timeout-s", "1800")) * 1000;
if (typeof WebSocket === "undefined") throw new Error("run with node --experimental-websocket (Node 20) or Node 22+");

const site = await serve(process.env.DIST ?? path.join(repo, "www/demo/dist"));
const hub = await startHubServer({ root });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "dit-hub-full-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--no-sandbox",
    "--remote-debugging-port=0"],
});

/** A raw CDP client on the browser's websocket (flat sessions). */
async function cdp() {
  const file = path.join(profile, "DevToolsActivePort");
  for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
  const [port, wsPath] = fs.readFileSync(file, "utf8").trim().split("\n");
  const ws = new WebSocket(`ws://127.0.0.1:${port}${wsPath}`);
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
  let id = 0;
  const waiting = new Map();
  const listeners = [];
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.id && waiting.has(msg.id)) {
      const { res, rej } = waiting.get(msg.id);
      waiting.delete(msg.id);
      msg.error ? rej(new Error(msg.error.message)) : res(msg.result);
    } else if (msg.method) for (const l of listeners) l(msg);
  };
  return {
    // A target that went away never answers: give up after 2 s.
    send: (method, params = {}, sessionId) => new Promise((res, rej) => {
      const m = { id: ++id, method, params, ...(sessionId ? { sessionId } : {}) };
      waiting.set(m.id, { res, rej });
      ws.send(JSON.stringify(m));
      setTimeout(() => { if (waiting.delete(m.id)) rej(new Error(`${method}: no answer`)); }, 2000);
    }),
    on: (l) => listeners.push(l),
    close: () => ws.close(),
  };
}

const client = await cdp();
/** sessionId -> {type, url} of the targets whose heap is sampled. */
const sessions = new Map();
client.on((msg) => {
  if (msg.method === "Target.attachedToTarget") {
    const { sessionId, targetInfo } = msg.params;
    sessions.set(sessionId, { type: targetInfo.type, url: targetInfo.url });
    client.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: true }, sessionId)
      .catch(() => {});
  } else if (msg.method === "Target.detachedFromTarget") sessions.delete(msg.params.sessionId);
});

/** Attaches to a Playwright page's target (and, through auto-attach, to its workers). */
async function watch(page) {
  const { targetInfos } = await client.send("Target.getTargets");
  const url = page.url();
  const t = targetInfos.find((t) => t.type === "page" && t.url === url);
  if (!t) throw new Error(`no CDP target for ${url}`);
  await client.send("Target.attachToTarget", { targetId: t.targetId, flatten: true });
}

/** Samples the heaps every 250 ms until stopped; returns the peaks. */
function sampler() {
  const peak = { usedBytes: 0, usedPlusBackingBytes: 0, perTarget: {} };
  let on = true;
  const loop = (async () => {
    while (on) {
      let used = 0, backing = 0;
      for (const [sid, info] of [...sessions]) {
        try {
          const h = await client.send("Runtime.getHeapUsage", {}, sid);
          used += h.usedSize;
          backing += h.backingStorageSize ?? 0;
          const key = info.type === "page" ? "page" : `${info.type} ${info.url.replace(/\?.*/, "")}`;
          peak.perTarget[key] = Math.max(peak.perTarget[key] ?? 0, h.usedSize + (h.backingStorageSize ?? 0));
        } catch { /* a target that went away */ }
      }
      peak.usedBytes = Math.max(peak.usedBytes, used);
      peak.usedPlusBackingBytes = Math.max(peak.usedPlusBackingBytes, used + backing);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return async () => { on = false; await loop; return peak; };
}

async function load(label) {
  hub.resetStats();
  sessions.clear();
  const page = await context.newPage();
  const console_ = [];
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") console_.push(m.text().slice(0, 2000)); });
  page.on("pageerror", (e) => console_.push(`page error: ${e.message}`));
  // A page of the site's origin first, so that the model's page stays in the renderer the sessions are attached to.
  await page.goto(`${site.url}/__blank`);
  await watch(page);
  const stop = sampler();
  const t0 = Date.now();
  const q = `?model=${encodeURIComponent(model)}&endpoint=${encodeURIComponent(hub.url)}`;
  await page.goto(`${site.url}/${q}`);
  await page.waitForFunction(
    () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden ||
      document.body.innerText.includes("DitError"),
    null, { timeout, polling: 500 });
  const seconds = (Date.now() - t0) / 1000;
  const heap = await stop();
  const err = page.locator("[data-testid=error]");
  let error = (await err.isHidden()) ? null : `${await err.getAttribute("data-kind")}: ${await err.textContent()}`;
  const text = await page.evaluate(() => document.body.innerText);
  if (!error && text.includes("DitError")) error = text.slice(text.indexOf("DitError")).split("\n")[0];
  const s = hub.stats();
  const files = Object.fromEntries(Object.entries(s.files).map(([f, v]) => [f, { requests: v.requests, bytes: v.bytes }]));
  await page.close();
  return { label, seconds, error, console: console_, requests: s.requests, bytes: s.bytes, files, heap };
}

const sizes = {};
const [owner, name] = model.replace(/^hf:\/\//, "").split(/[/@]/);
for (const f of ["transformer/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.bin"]) {
  const p = path.join(root, owner, name, f);
  if (fs.existsSync(p)) sizes[`${owner}/${name}/${f}`] = fs.statSync(p).size;
}
const first = await load("first");
const second = await load("second");
client.close();
await context.close();
site.close();
await hub.close();
fs.rmSync(profile, { recursive: true, force: true });

const result = { model, sizes, first, second };
if (process.argv.includes("--json")) console.log(JSON.stringify(result, null, 2));
else {
  const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
  for (const r of [first, second]) {
    console.log(`${r.label} load: ${r.seconds.toFixed(1)} s${r.error ? ` (error ${r.error})` : ""}; ${r.requests} requests, ${mb(r.bytes)} sent`);
    for (const c of r.console) console.log(`  console: ${c}`);
    for (const [f, v] of Object.entries(r.files)) {
      const of = sizes[f] ? ` of ${mb(sizes[f])}` : "";
      console.log(`  ${f}: ${v.requests} requests, ${mb(v.bytes)}${of}`);
    }
    console.log(`  peak JS heap (page + workers): ${mb(r.heap.usedBytes)} used, ${mb(r.heap.usedPlusBackingBytes)} with ArrayBuffer backing stores`);
    for (const [t, b] of Object.entries(r.heap.perTarget)) console.log(`    ${t}: ${mb(b)}`);
  }
}
