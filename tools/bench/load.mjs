// Page load on the demo model: milliseconds from navigation to "ready" (the Generate button enabled) and the pipelines
// the load compiled (the page's data-pipelines, from info().pipelines), in fresh profiles (nothing in Cache Storage),
// ROUNDS rounds (default 3), every build and browser taking turns in each round:
//   node tools/bench/load.mjs [--json] [--browsers LIST] [DIST_A [DIST_B]]    (default: www/demo/dist, chromium)
// Two builds side by side compare a change. LIST (comma-separated) picks the browsers:
//   chromium             headless Chromium (its WebGPU: SwiftShader without a GPU)
//   firefox              headless Firefox ESR on the machine's Vulkan driver (lavapipe without a GPU), Mesa's shader
//                        cache as it is (after one load, the shaders come from it)
//   firefox-cold         the same with an empty Mesa shader cache: what a first visit on a fresh machine pays
//   firefox-swiftshader  Firefox on SwiftShader's Vulkan driver (Chromium's, /usr/lib/chromium): the same CPU driver
//                        as Chromium, to compare the two browsers rather than the two drivers
// A build without the counter reports pipelines as null.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { ARGS, chromiumPath, repo } from "../../tests/e2e/browser.mjs";
import { launchFirefox } from "../../tests/e2e/firefox.mjs";
import { serve } from "../../tests/e2e/server.mjs";
import { waitLoaded } from "../../tests/e2e/visitor.mjs";

const SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";
const json = process.argv.includes("--json");
const args = process.argv.slice(2);
const at = args.indexOf("--browsers");
const browsers = (at >= 0 ? args[at + 1] : "chromium").split(",").filter(Boolean);
const known = ["chromium", "firefox", "firefox-cold", "firefox-swiftshader"];
const unknown = browsers.filter((b) => !known.includes(b));
if (unknown.length || (at >= 0 && !args[at + 1])) {
  console.error(`load.mjs: unknown browser ${unknown.join(", ") || "(none given)"}; one or more of ${known.join(", ")}`);
  process.exit(2);
}
const dists = args.filter((a, i) => !a.startsWith("--") && (at < 0 || i !== at + 1));
if (dists.length === 0) dists.push(path.join(repo, "www/demo/dist"));
const rounds = Number(process.env.ROUNDS ?? 3);
const servers = await Promise.all(dists.map((d) => serve(path.resolve(d))));

/** Opens a fresh profile of `browser` and returns its page, and how to close it. */
async function fresh(browser) {
  if (browser === "chromium") {
    const b = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
    return { page: await (await b.newContext()).newPage(), close: () => b.close() };
  }
  const env = { ...process.env };
  let cache = null;
  if (browser === "firefox-cold") env.MESA_SHADER_CACHE_DIR = cache = fs.mkdtempSync(path.join(os.tmpdir(), "dit-mesa-"));
  if (browser === "firefox-swiftshader") env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  const b = await launchFirefox({ env });
  return {
    page: await b.newPage(),
    close: async () => {
      await b.close();
      if (cache) fs.rmSync(cache, { recursive: true, force: true });
    },
  };
}

const runs = dists.map(() => browsers.map(() => []));
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < dists.length; i++) {
    for (const [j, browser] of browsers.entries()) {
      const { page, close } = await fresh(browser);
      const t0 = Date.now();
      await page.goto(`${servers[i].url}/`);
      const error = await waitLoaded(page);
      const ms = Date.now() - t0;
      const pipelines = await page.evaluate(() => document.querySelector("#load-text")?.dataset.pipelines ?? null);
      await close();
      if (error) throw new Error(`${browser}: the page shows an error (${error.kind}): ${error.text}`);
      runs[i][j].push({ ms, pipelines: pipelines === null ? null : Number(pipelines) });
      if (!json) console.log(`round ${r + 1}, ${dists[i]}, ${browser}: ready in ${ms} ms, ${pipelines ?? "?"} pipelines`);
    }
  }
}
servers.forEach((s) => s.close());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = dists.flatMap((d, i) =>
  browsers.map((browser, j) => ({
    dist: d,
    browser,
    ms_to_ready: runs[i][j].map((x) => x.ms),
    median_ms: median(runs[i][j].map((x) => x.ms)),
    pipelines: runs[i][j][0].pipelines,
  })),
);
if (json) console.log(JSON.stringify(result));
else for (const r of result) console.log(`${r.dist}, ${r.browser}: median ${r.median_ms} ms to ready, ${r.pipelines ?? "?"} pipelines`);
