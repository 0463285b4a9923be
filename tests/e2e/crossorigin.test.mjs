// The npm package as other sites embed it, with no bundler: the built package (www/lib: dist/ and pkg/) and the demo
// model are served from one origin with `Access-Control-Allow-Origin: *` (as CDNs serve them), and a plain HTML page
// on another origin imports the package with `<script type="module">` and generates an image. A page may not start a
// Worker from another origin's script, so the package starts it from a same-origin blob that imports its worker; the
// wasm must then come from the package's origin. The image is the native `dit sample` one, with a class blend.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { ARGS, chromiumPath, LOAD, maxDiff, nativeSample, repo } from "./browser.mjs";
import { packageOnAnotherOrigin } from "./server.mjs";

let cdn, site, browser, page;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dit-crossorigin-"));
before(async () => {
  // The package as published (package.json `files`: dist/ and pkg/), and the models, on the "CDN" origin; the
  // embedding page on another origin (another port): it only imports the package by URL.
  ({ cdn, site } = await packageOnAnotherOrigin(repo, dir));
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  page = await (await browser.newContext()).newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  page.on("console", (m) => m.type() === "error" && console.log("console error:", m.text()));
});
after(async () => {
  await browser?.close();
  cdn?.close();
  site?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a page on another origin imports the package with <script type=module> and generates (a class blend)", async () => {
  assert.notEqual(new URL(cdn.url).origin, new URL(site.url).origin);
  await page.goto(`${site.url}/`);
  await page.waitForFunction(() => window.dit !== undefined, null, { timeout: 30_000 });
  const models = `${cdn.url}/models/demo`;
  const got = await page.evaluate(async (models) => {
    const s = await window.dit.createSampler({ model: `${models}/dit`, vae: `${models}/vae` });
    const r = await s.generate({ classLabels: [3], blend: { with: 7, alpha: 0.5 }, cfgScale: 4, steps: 4, sampler: "ddim", seed: 5 });
    const bad = [];
    for (const blend of [{ with: 7, alpha: 1.5 }, { with: 7, alpha: NaN }, { with: 10, alpha: 0.5 }]) {
      try {
        await s.generate({ classLabels: [3], blend, steps: 2 });
        bad.push(null);
      } catch (e) {
        bad.push({ kind: e.kind, invalid: e instanceof window.dit.InvalidInputError, message: e.message });
      }
    }
    s.dispose();
    return { width: r.width, height: r.height, pixels: Array.from(r.images[0]), bad };
  }, models);
  // The worker script, the wasm and the weights all came from the package's origin, fetched under CORS.
  const fetched = cdn.requests.map((r) => r.url);
  for (const f of ["/dit-wasm/dist/index.js", "/dit-wasm/dist/worker.js", "/dit-wasm/pkg/dit_wasm.js", "/dit-wasm/pkg/dit_wasm_bg.wasm"]) {
    assert.ok(fetched.includes(f), `${f} fetched from the package's origin`);
  }
  const wasm = cdn.requests.find((r) => r.url.endsWith(".wasm"));
  assert.equal(wasm.origin, new URL(site.url).origin, "the wasm is a CORS request from the page's origin");
  assert.deepEqual(site.requests.map((r) => r.url).filter((u) => u !== "/" && u !== "/favicon.ico"), [], "nothing else asked of the page's origin");

  const native = nativeSample(["--model", path.join(repo, "models/demo/dit"), "--vae", path.join(repo, "models/demo/vae"),
    "--class", "3", "--blend", "7", "--alpha", "0.5", "--cfg", "4", "--steps", "4", "--sampler", "ddim", "--seed", "5"]);
  const d = maxDiff(native, got.pixels);
  console.log(`cross-origin page, class 3 blended with 7 at 0.5: ${got.width}x${got.height}, max uint8 difference from dit sample ${d}`);
  assert.ok(d <= 2, `max difference ${d} > 2`);
  for (const b of got.bad) console.log("bad blend ->", JSON.stringify(b));
  for (const b of got.bad) {
    assert.ok(b && b.kind === "invalid-input" && b.invalid, `a bad blend is an InvalidInputError: ${JSON.stringify(b)}`);
    assert.ok(!b.message.includes("\n"), "one line");
  }
  assert.match(got.bad[0].message, /alpha 1\.5/);
  assert.match(got.bad[2].message, /blend class 10 is out of range/);
}, { timeout: LOAD });
