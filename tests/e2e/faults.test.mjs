// GPU loss on the built page (www/demo, the embedded demo model): Chromium's GPU process is crashed through CDP
// (`Browser.crashGpuProcess`), which really loses the WebGPU device. The package must open a new device and reload the
// model from Cache Storage by itself: the next Generate works with no reload and no click on "Load model", the
// gallery stays, and the same settings give the same pixels as before the crash; a generation running at the crash
// starts again and gives them too.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { ARGS, chromiumPath, errorKind, generate, LOAD, repo, site } from "./browser.mjs";

/** The settings of every image here: a short DDIM run of the demo model. */
const SETTINGS = { steps: 24, sampler: "ddim", seed: 11, cfg: 4 };

/**
 * Chromium blocks WebGPU for a site whose pages were running when the GPU process crashed twice in a short time (the
 * crashes here are forced, twice a minute): the flag keeps it offered, as it is after a single reset. After a third
 * crash it offers no adapter at all, so the third case has a browser of its own.
 */
const BROWSER_ARGS = ["--enable-unsafe-webgpu", "--disable-domain-blocking-for-3d-apis", ...ARGS];

let server, browser, context, page;
before(async () => {
  server = await serve(site);
  browser = await chromium.launch({ executablePath: chromiumPath, args: BROWSER_ARGS });
  context = await browser.newContext();
  page = await context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.goto(`${server.url}/?model=demo`);
  await page.waitForFunction(
    () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden,
    null,
    { timeout: LOAD },
  );
  assert.equal(await errorKind(page), null, "the demo model loads");
});
after(async () => {
  await browser?.close();
  server?.close();
});

const shardRequests = () => [...server.counts].filter(([k]) => k.endsWith(".safetensors")).reduce((a, [, v]) => a + v, 0);
const notices = () => page.evaluate(() => window.__ditStats.notices.slice());
const gallery = () =>
  page.evaluate(() =>
    [...document.querySelectorAll("[data-testid=result]")].map((c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data)),
  );

async function crashGpu(on = page) {
  const cdp = await on.context().newCDPSession(on);
  await cdp.send("Browser.crashGpuProcess");
  await cdp.detach();
}

/** The number of pixel values that differ between two RGBA images, and the largest difference. */
function compare(a, b) {
  assert.equal(a.length, b.length, "same image size");
  let n = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d) n++;
    max = Math.max(max, d);
  }
  return { n, max };
}

let reference;

test("GPU process crashed between two generations: the next Generate works by itself, same pixels, gallery kept", async () => {
  reference = await generate(page, SETTINGS);
  const shards = shardRequests();
  const seen = (await notices()).length;
  await crashGpu();
  // The package notices the loss while idle and reloads the model from the cache; the page shows its notices.
  await page.waitForFunction((n) => window.__ditStats.notices.slice(n).some((t) => /GPU is back/.test(t)), seen, { timeout: LOAD, polling: 200 });
  console.log("notices:", (await notices()).slice(seen));
  const after = await generate(page, SETTINGS);
  assert.equal(await errorKind(page), null, "no error shown");
  const d = compare(after, reference);
  console.log(`after the crash vs before: ${d.n} differing values, max difference ${d.max}`);
  assert.equal(d.max, 0, "the same settings give the same image after recovery");
  const images = await gallery();
  assert.equal(images.length, 2, "the gallery kept the image made before the crash");
  assert.equal(compare(images[1], reference).max, 0, "the earlier image is unchanged");
  assert.equal(shardRequests(), shards, "the model came back from Cache Storage: no shard was requested");
});

test("GPU process crashed during a generation: it starts again and gives the same pixels", async () => {
  const seen = (await notices()).length;
  const count = (await gallery()).length;
  await page.click("[data-testid=generate]");
  await page.waitForFunction(() => /step ([3-9]|\d\d+)\//.test(document.querySelector("[data-testid=progress-text]").textContent), null, { timeout: LOAD, polling: 50 });
  const at = await page.locator("[data-testid=progress-text]").textContent();
  await crashGpu();
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=result]").length > n || !document.querySelector("[data-testid=error]").hidden, count, { timeout: LOAD, polling: 200 });
  assert.equal(await errorKind(page), null, "no error shown");
  const said = (await notices()).slice(seen);
  console.log(`crashed at "${at}"; notices:`, said);
  assert.ok(said.some((t) => /starts again/.test(t)), "the running generation was restarted (it was still running at the crash)");
  const images = await gallery();
  assert.equal(images.length, count + 1);
  const d = compare(images[0], reference);
  console.log(`restarted generation vs the image before any crash: ${d.n} differing values, max difference ${d.max}`);
  assert.equal(d.max, 0, "the restarted generation gives the same image");
  // And the page goes on working: one more image with no click on "Load model".
  const again = await generate(page, { ...SETTINGS, seed: 12 });
  assert.ok(compare(again, reference).max > 0, "another seed gives another image");
  assert.equal(await errorKind(page), null);
});

test("a worker the app created (the `worker` option): a GPU loss rejects its calls with a DeviceLostError; a new sampler works", async () => {
  // The package imported by a blank page of a server over the repository, with a worker of the page's own.
  const own = await serve(repo);
  const fresh = await chromium.launch({ executablePath: chromiumPath, args: BROWSER_ARGS });
  const p = await fresh.newPage();
  await p.route(`${own.url}/blank.html`, (r) => r.fulfill({ contentType: "text/html", body: "<!doctype html><title>dit-wasm</title>" }));
  await p.goto(`${own.url}/blank.html`);
  const gen = { classLabels: [1], steps: 5, sampler: "ddim", cfgScale: 4, seed: 3 };
  const before = await p.evaluate(async (gen) => {
    window.dit = await import("/www/lib/dist/index.js");
    window.load = () => {
      const worker = new Worker("/www/lib/dist/worker.js", { type: "module" });
      return window.dit.createSampler({ model: "/models/demo/dit", vae: "/models/demo/vae", worker });
    };
    window.s = await window.load();
    return Array.from((await window.s.generate(gen)).images[0]);
  }, gen);
  await crashGpu(p);
  const kind = await p.evaluate(async (gen) => {
    // Whether the loss reaches the worker before this call or during it, the call fails with its kind.
    return window.s.generate(gen).then(() => "ok", (e) => e.kind);
  }, gen);
  console.log(`the caller's worker after the crash: ${kind}`);
  assert.equal(kind, "device-lost");
  const after = await p.evaluate(async (gen) => {
    window.s.dispose();
    // Right after the crash the browser may offer no adapter until its GPU process is back: try again, as an app would.
    for (let attempt = 1; ; attempt++) {
      try {
        const s = await window.load();
        return Array.from((await s.generate(gen)).images[0]);
      } catch (e) {
        if (e.kind !== "no-webgpu" || attempt === 5) throw e;
        await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
  }, gen);
  const d = compare(after, before);
  console.log(`a new sampler with a new worker, after the crash vs before: max difference ${d.max}`);
  assert.equal(d.max, 0);
  await fresh.close();
  own.close();
});
