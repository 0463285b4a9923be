// What the browser tests share: the repository, the built site, Chromium's path and flags, the load timeout.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startHubServer } from "./hub-server.mjs";
import { serve } from "./server.mjs";

export const repo = path.resolve(import.meta.dirname, "../..");
export const site = path.join(repo, "www/demo/dist");
/** Milliseconds a page may take to load the models (SwiftShader compiles every kernel on first use). */
export const LOAD = 300_000;
export const ARGS = ["--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-sandbox"];
export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** The page's typed error, if one is shown: its kind and text. */
export async function errorKind(page) {
  const e = page.locator("[data-testid=error]");
  return (await e.isHidden()) ? null : { kind: await e.getAttribute("data-kind"), text: await e.textContent() };
}

/** Sets the controls (and the class, when given) and generates; returns the last result's RGBA pixels. */
/** Waits until the page's model is loaded (Generate enabled) or its load failed (an error shown). */
export async function waitLoaded(page) {
  await page.waitForFunction(
    () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden,
    null,
    { timeout: LOAD },
  );
}

export async function generate(page, { steps, sampler = "dpmpp2m", seed = 7, cfg = 4, count = 1, classLabel }) {
  await page.fill("[data-testid=steps]", String(steps));
  await page.selectOption("[data-testid=sampler]", sampler);
  await page.fill("[data-testid=seed]", String(seed));
  await page.fill("[data-testid=cfg]", String(cfg));
  await page.fill("[data-testid=count]", String(count));
  if (classLabel !== undefined) await page.fill("[data-testid=class-select]", String(classLabel));
  const before = await page.locator("[data-testid=result]").count();
  await page.click("[data-testid=generate]");
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=result]").length > n, before, { timeout: LOAD });
  return page.evaluate(() => {
    const c = document.querySelector("[data-testid=result]");
    return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
  });
}

/** `dit sample ARGS` (the native binary: DIT_BIN, else the debug build) to a .npy: [3, H, W] f32 in [-1, 1]. */
export function nativeSample(args) {
  const dit = process.env.DIT_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(repo, "target"), "debug/dit");
  const out = path.join(os.tmpdir(), `dit-e2e-${process.pid}.npy`);
  execFileSync(dit, ["sample", ...args, "--quiet", "--out", out], { cwd: repo });
  const buf = fs.readFileSync(out);
  fs.rmSync(out);
  const headerLen = buf.readUInt16LE(8);
  return new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + headerLen, buf.byteOffset + buf.length));
}

/** The largest difference between a native image (rounded as the page rounds) and the page's RGBA pixels. */
export function maxDiff(native, pixels) {
  const hw = native.length / 3;
  assert.equal(hw * 4, pixels.length, "same image size");
  let d = 0;
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.min(255, Math.max(0, Math.trunc(127.5 * native[c * hw + p] + 128)));
      d = Math.max(d, Math.abs(v - pixels[p * 4 + c]));
    }
  }
  return d;
}

/**
 * The built site and the stand-in Hub over the repos under `root`, with Chromium (WebGPU) and one context; `close()`
 * stops them all and removes `root`.
 */
export async function hubSession(root) {
  const site_ = await serve(site);
  const hub = await startHubServer({ root });
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  const context = await browser.newContext();
  const close = async () => {
    await browser.close();
    site_.close();
    await hub.close();
    fs.rmSync(root, { recursive: true, force: true });
  };
  return { site: site_, hub, browser, context, close };
}
