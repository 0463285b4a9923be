// Page load on the demo model in headless Chromium (SwiftShader here): milliseconds from navigation to "ready" (the
// Generate button enabled) and the pipelines the load compiled (the page's data-pipelines, from info().pipelines).
// Two builds side by side (before / after a change), alternating, each load in a fresh browser context (nothing in
// Cache Storage), ROUNDS rounds (default 3):
//   node tools/bench/load.mjs [--json] [DIST_A [DIST_B]]    (default: www/demo/dist)
// A build without the counter reports pipelines as null.
import path from "node:path";
import { chromium } from "playwright-core";
import { ARGS, chromiumPath, repo, waitLoaded } from "../../tests/e2e/browser.mjs";
import { serve } from "../../tests/e2e/server.mjs";

const json = process.argv.includes("--json");
const dists = process.argv.slice(2).filter((a) => !a.startsWith("--"));
if (dists.length === 0) dists.push(path.join(repo, "www/demo/dist"));
const rounds = Number(process.env.ROUNDS ?? 3);
const servers = await Promise.all(dists.map((d) => serve(path.resolve(d))));
const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
const runs = dists.map(() => []);
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < dists.length; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`${servers[i].url}/`);
    await waitLoaded(page);
    const ms = Date.now() - t0;
    const pipelines = await page.locator("#load-text").getAttribute("data-pipelines").catch(() => null);
    runs[i].push({ ms, pipelines: pipelines === null ? null : Number(pipelines) });
    await context.close();
    if (!json) console.log(`round ${r + 1}, ${dists[i]}: ready in ${ms} ms, ${pipelines ?? "?"} pipelines`);
  }
}
await browser.close();
servers.forEach((s) => s.close());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = dists.map((d, i) => ({ dist: d, ms_to_ready: runs[i].map((x) => x.ms), median_ms: median(runs[i].map((x) => x.ms)),
  pipelines: runs[i][0].pipelines }));
if (json) console.log(JSON.stringify(result));
else for (const r of result) console.log(`${r.dist}: median ${r.median_ms} ms to ready, ${r.pipelines ?? "?"} pipelines`);
