// Memory under repeated use in the browser: the demo page (www/demo, built) generates 20 times in one page, and the GPU
// buffers and textures its sampler holds (the generate result's gpuMemory, kept by the page in window.__ditStats) after
// the 20th generation equal those after the 2nd. The JS heaps and the processes' resident memory over 100
// generations are measured by tools/bench/memory.mjs (figures in the README), not asserted here.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { ARGS, chromiumPath, errorKind, generate, LOAD, site } from "./browser.mjs";

let server, browser;
before(async () => {
  server = await serve(site);
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
});
after(async () => {
  await browser?.close();
  server?.close();
});

test("20 generations in one page leave no more GPU memory held than 2", async () => {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.goto(`${server.url}/?model=demo`);
  await page.waitForFunction(() => !document.querySelector("[data-testid=generate]").disabled, null, { timeout: LOAD });
  const held = [];
  for (let i = 0; i < 20; i++) {
    // Each generation differs (sampler, seed, class), as a user's would.
    await generate(page, { steps: 2, sampler: ["ddim", "ddpm", "dpmpp2m"][i % 3], seed: i, classLabel: i % 10 });
    assert.equal(await errorKind(page), null);
    held.push(await page.evaluate(() => window.__ditStats.gpuMemory));
  }
  console.log("GPU memory held after generation 1:", held[0]);
  console.log("after 2:", held[1]);
  console.log("after 20:", held[19]);
  assert.ok(held[1].buffers > 0 && held[1].bufferBytes > 0, "the sampler's buffers are counted");
  assert.deepEqual(held[19], held[1], "GPU buffers or textures held grew between generation 2 and 20");
  await page.close();
});
