// The embedded demos as a visitor meets them: milliseconds from pressing Generate to the image on the page, the
// flow-map demo (the page's default: 1 step, and 2 steps) against the DiT demo (50 guided DDIM steps), in one headless
// Chromium (its WebGPU: SwiftShader without a GPU), ROUNDS rounds (default 3) taking turns. Each model is loaded once
// and generates once before the timed runs (pipelines compiled), so the figure is the sampling and the decode.
//   node tools/bench/demo.mjs [--rounds N] [--json] [DIST]    (default: www/demo/dist, built by scripts/build-site.sh)
import path from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { ARGS, chromiumPath, repo } from "../../tests/e2e/browser.mjs";
import { serve } from "../../tests/e2e/server.mjs";
import { waitLoaded } from "../../tests/e2e/visitor.mjs";

const { values: a, positionals } = parseArgs({
  options: { rounds: { type: "string", default: "3" }, json: { type: "boolean", default: false } },
  allowPositionals: true,
});
const rounds = Number(a.rounds);
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error(`demo.mjs: --rounds must be a whole number of at least 1, not ${a.rounds}`);
  process.exit(2);
}
const dist = path.resolve(positionals[0] ?? path.join(repo, "www/demo/dist"));

/** The rows: the page's two demos at their defaults, and the flow map at 2 steps. */
const ROWS = [
  { name: "flow-map demo, 1 step (the page's default)", model: "demo-flow", steps: 1 },
  { name: "flow-map demo, 2 steps", model: "demo-flow", steps: 2 },
  { name: "DiT demo, 50 guided DDIM steps", model: "demo", steps: 50 },
];

/** Milliseconds from the click on Generate to a new result on the page. */
async function generateMs(page, steps) {
  await page.fill("[data-testid=steps]", String(steps));
  await page.fill("[data-testid=seed]", "7");
  return page.evaluate(async () => {
    const before = document.querySelectorAll("[data-testid=result]").length;
    const t0 = performance.now();
    document.querySelector("[data-testid=generate]").click();
    while (document.querySelectorAll("[data-testid=result]").length <= before) {
      const e = document.querySelector("[data-testid=error]");
      if (e && !e.hidden) throw new Error(`the page shows an error: ${e.textContent}`);
      await new Promise((r) => requestAnimationFrame(r));
    }
    return performance.now() - t0;
  });
}

const say = (...m) => (a.json ? console.error : console.log)(...m);
const server = await serve(dist);
const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
const times = ROWS.map(() => []);
try {
  const pages = {};
  for (const model of new Set(ROWS.map((r) => r.model))) {
    const page = await browser.newPage();
    await page.goto(`${server.url}/?model=${model}`);
    const err = await waitLoaded(page);
    if (err) throw new Error(`${model}: ${err.kind}: ${err.text}`);
    pages[model] = page;
  }
  for (const r of ROWS) say(`warm-up ${r.name}: ${(await generateMs(pages[r.model], r.steps)).toFixed(0)} ms`);
  for (let round = 0; round < rounds; round++) {
    for (const [i, r] of ROWS.entries()) {
      const ms = await generateMs(pages[r.model], r.steps);
      times[i].push(ms);
      say(`round ${round + 1} ${r.name}: ${ms.toFixed(0)} ms`);
    }
  }
} finally {
  await browser.close();
  server.close();
}
const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const base = median(times[ROWS.length - 1]);
const result = ROWS.map((r, i) => ({ ...r, ms: times[i], median_ms: median(times[i]), vs_dit: base / median(times[i]) }));
if (a.json) console.log(JSON.stringify({ browser: "chromium", rounds, rows: result }, null, 2));
else {
  console.log("\n| demo | Generate -> image (median ms) | faster than the DiT demo |\n|---|---|---|");
  for (const r of result) console.log(`| ${r.name} | ${r.median_ms.toFixed(0)} | ${r.vs_dit.toFixed(1)}x |`);
}
