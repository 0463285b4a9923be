// Memory under long use in the browser: the demo page (www/demo/dist, built by scripts/build-site.sh) generates N times
// (default 100) in one page, through its own controls, and after each generation this records, after a garbage
// collection:
//   - the JS heap of the page and of the sampler's worker (CDP Runtime.getHeapUsage on each target; the worker's
//     target is reached by auto-attaching to the page's children), and the page's DOM nodes (Performance.getMetrics);
//   - the resident memory (VmRSS) of Chromium's processes, by type: the GPU process (which holds SwiftShader's buffers
//     here), the renderers (the page and its worker), the browser and the rest;
//   - the GPU buffers and textures the sampler holds (the generate result's gpuMemory, kept by the page).
// Prints each series' growth per generation after warm-up (least-squares slope over generations 11..N) and the first
// and last values. Usage: node tools/bench/memory.mjs [--generations 100] [--steps 10] [--json]
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../../tests/e2e/server.mjs";
import { ARGS, chromiumPath, generate, LOAD, site } from "../../tests/e2e/browser.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const generations = arg("--generations", 100);
const steps = arg("--steps", 10);
const json = process.argv.includes("--json");

/** Resident bytes of every process below this one (the Chromium this script launched), summed by process type. */
function rssByType() {
  const children = new Map();
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const ppid = Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(pid)]);
    } catch {
      // The process ended while being read.
    }
  }
  const out = {};
  const walk = (pid) => {
    for (const c of children.get(pid) ?? []) {
      try {
        // Chromium rewrites its children's command lines into one string, so split on spaces too.
        const cmd = fs.readFileSync(`/proc/${c}/cmdline`, "utf8").split(/[\0 ]/);
        const rss = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${c}/status`, "utf8"))?.[1] ?? 0) * 1024;
        const type = cmd.find((a) => a.startsWith("--type="))?.slice(7) ?? (/chrom/.test(cmd[0]) ? "browser" : "other");
        const key = type === "gpu-process" ? "gpu" : type === "renderer" ? "renderer" : type === "browser" ? "browser" : "other";
        out[key] = (out[key] ?? 0) + rss;
      } catch {
        // The process ended while being read.
      }
      walk(c);
    }
  };
  walk(process.pid);
  return out;
}

/** A CDP session on the page, with calls into its worker through Target.sendMessageToTarget. */
async function cdp(context, page) {
  const session = await context.newCDPSession(page);
  const workers = [];
  const pending = new Map();
  let next = 1;
  session.on("Target.attachedToTarget", (e) => {
    if (e.targetInfo.type === "worker") workers.push(e.sessionId);
  });
  session.on("Target.receivedMessageFromTarget", (e) => {
    const m = JSON.parse(e.message);
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  });
  await session.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  const inWorker = (method, params = {}) => {
    const id = next++;
    const answer = new Promise((resolve) => pending.set(id, resolve));
    session.send("Target.sendMessageToTarget", { sessionId: workers.at(-1), message: JSON.stringify({ id, method, params }) });
    return answer.then((m) => m.result);
  };
  return {
    async measure() {
      await session.send("HeapProfiler.collectGarbage");
      const page = await session.send("Runtime.getHeapUsage");
      const metrics = Object.fromEntries((await session.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
      let worker = null;
      if (workers.length) {
        await inWorker("HeapProfiler.collectGarbage");
        worker = await inWorker("Runtime.getHeapUsage");
      }
      return { pageHeap: page.usedSize, workerHeap: worker?.usedSize ?? null, nodes: metrics.Nodes };
    },
    async start() {
      await session.send("Performance.enable");
      if (workers.length) await inWorker("Runtime.enable");
    },
  };
}

/** Least-squares slope of ys over xs. */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (ys[i] - my);
  }
  return sxx > 0 ? sxy / sxx : 0;
}

const server = await serve(process.env.DIST ?? site);
const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
const context = await browser.newContext();
const page = await context.newPage();
page.on("pageerror", (e) => console.error("page error:", e.message));
const t0 = Date.now();
await page.goto(`${server.url}/?model=demo`);
await page.waitForFunction(() => !document.querySelector("[data-testid=generate]").disabled, null, { timeout: LOAD });
const probe = await cdp(context, page);
await probe.start();
const adapter = await page.locator("#adapter").textContent();
const samples = [];
for (let g = 1; g <= generations; g++) {
  await generate(page, { steps, sampler: "dpmpp2m", seed: g, classLabel: g % 10 });
  const m = await probe.measure();
  const gpuMemory = await page.evaluate(() => window.__ditStats.gpuMemory);
  samples.push({ generation: g, ...m, rss: rssByType(), gpuMemory });
  if (!json && (g === 1 || g % 10 === 0)) {
    const s = samples.at(-1);
    console.error(`generation ${g}: page heap ${s.pageHeap}, worker heap ${s.workerHeap}, GPU process RSS ${s.rss.gpu}`);
  }
}
await browser.close();
server.close();

const warm = samples.filter((s) => s.generation > Math.min(10, generations / 10));
const xs = warm.map((s) => s.generation);
const series = {
  page_js_heap: (s) => s.pageHeap,
  worker_js_heap: (s) => s.workerHeap,
  page_dom_nodes: (s) => s.nodes,
  gpu_process_rss: (s) => s.rss.gpu,
  renderer_rss: (s) => s.rss.renderer,
  browser_rss: (s) => s.rss.browser,
  all_chromium_rss: (s) => Object.values(s.rss).reduce((a, b) => a + b, 0),
  gpu_buffer_bytes_held: (s) => s.gpuMemory?.bufferBytes,
  gpu_buffers_held: (s) => s.gpuMemory?.buffers,
};
const summary = {};
for (const [name, f] of Object.entries(series)) {
  const ys = warm.map(f);
  summary[name] = {
    first: f(samples[0]),
    after_warm_up: f(warm[0]),
    last: f(samples.at(-1)),
    per_generation: ys.every((y) => typeof y === "number") ? slope(xs, ys) : null,
  };
}
const result = { adapter, generations, steps, sampler: "dpmpp2m", cfg: 4, seconds: (Date.now() - t0) / 1000, summary, samples };
if (json) {
  console.log(JSON.stringify(result));
} else {
  console.log(`${generations} generations of the demo model (${steps} DPM-Solver++(2M) steps, guidance 4) in one page on ${adapter}`);
  console.log(`${"series".padEnd(24)} ${"first".padStart(14)} ${"gen 11".padStart(14)} ${"last".padStart(14)} ${"per generation".padStart(16)}`);
  for (const [name, s] of Object.entries(summary)) {
    const fmt = (v) => String(v ?? "?").padStart(14);
    console.log(`${name.padEnd(24)} ${fmt(s.first)} ${fmt(s.after_warm_up)} ${fmt(s.last)} ${(s.per_generation?.toFixed(1) ?? "?").padStart(16)}`);
  }
  console.log(`${result.seconds.toFixed(0)} s in all`);
}
