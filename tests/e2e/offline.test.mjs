// The page without a network after a first visit, as a visitor meets it: one tab opens the page once (the demo model
// loads, one image is made), the network goes (the server drops every connection), the same tab is reloaded and
// makes the same image from the service worker's copies and the package's cached weights. Static hosts send different
// `Vary` headers (Vite's server, behind `npm start`, sends `Vary: Origin`); the copies must answer whatever they say.
// And when the page's own script cannot be loaded, the page says so. In Chromium (Playwright); Firefox runs the same
// path in firefox.test.mjs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { ARGS, chromiumPath, LOAD, site } from "./browser.mjs";
import { maxPixelDiff, offlineRevisit } from "./visitor.mjs";

/** One image of class 8: 8 DDIM steps at guidance 4, seed 11. */
const SETTINGS = { classLabel: 8, steps: 8, sampler: "ddim", seed: 11, cfg: 4 };

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
});
after(async () => {
  await browser?.close();
});

for (const vary of ["Origin", null]) {
  test(`offline after a first visit, the same tab reloads and makes the same image (server ${vary ? `Vary: ${vary}` : "without Vary"})`, async () => {
    const server = await serve(site, 0, { headers: vary ? { vary } : {} });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      page.on("pageerror", (e) => console.log("page error:", e.message));
      // The page's own files that failed (the weights' index, refused offline, comes from the package's cache).
      page.on("requestfailed", (r) => !r.url().includes("/demo/") && console.log("request failed:", r.url(), r.failure()?.errorText));
      const r = await offlineRevisit(page, server, SETTINGS, "?model=demo");
      console.log(`kept ${r.kept.length} files, Vary on them: ${JSON.stringify([...new Set(r.kept.map((f) => f.vary))])}; offline reload controlled: ${r.controlled}`);
      assert.ok(r.kept.some((f) => f.path === "/") && r.kept.some((f) => /\/assets\/main-.*\.js$/.test(f.path)), "the page and its script are kept");
      assert.deepEqual(r.kept.filter((f) => f.vary !== null), [], "kept without the server's Vary");
      assert.ok(r.controlled, "the reloaded page is the service worker's");
      const line = await page.locator("#adapter").textContent();
      console.log("the GPU line:", line);
      assert.doesNotMatch(line, /BrowserWebGpu|WebGPU adapter/, "the device in words, not wgpu's backend");
      assert.equal(maxPixelDiff(r.first, r.second), 0, "the same image offline");
    } finally {
      await context.close();
      server.close();
    }
  }, { timeout: 3 * LOAD });
}

test("when the page's own script cannot be loaded, the page says so (not that it is looking for WebGPU)", async () => {
  const server = await serve(site);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    // As offline without a kept copy: the HTML arrives, its scripts and style sheet do not.
    await page.route(/\/assets\//, (r) => r.abort("internetdisconnected"));
    await page.goto(`${server.url}/`);
    const line = page.locator("#adapter");
    await line.locator("[data-testid=no-script]").waitFor({ state: "visible", timeout: 30_000 });
    const text = await line.textContent();
    console.log("the status line:", text);
    assert.match(text, /script has not started: it could not be loaded/);
    assert.doesNotMatch(text, /Looking for WebGPU/);
    // With the script, the line is the script's at once (the sentence is gone).
    await page.unroute(/\/assets\//);
    await page.reload();
    await page.waitForFunction(() => !document.querySelector("[data-testid=no-script]"), null, { timeout: 30_000 });
  } finally {
    await context.close();
    server.close();
  }
});
