// Firefox for the browser tests: Debian's firefox-esr (scripts/setup.sh --test), driven by puppeteer-core over
// WebDriver BiDi, with WebGPU switched on by its prefs. WebGPU's absence is a failure that says so, never a skip:
// `requireWebGpu` throws when Firefox offers no adapter. DIT_FIREFOX_PREFS (JSON) adds or overrides prefs (the test of
// that failure sets `dom.webgpu.enabled` to false).
import puppeteer from "puppeteer-core";
import { LOAD } from "./browser.mjs";

export const firefoxPath = process.env.FIREFOX ?? "/usr/bin/firefox-esr";

/** WebGPU on (Firefox ESR ships it off on Linux), and on this machine's CPU driver, which Firefox blocklists. */
export const FIREFOX_PREFS = { "dom.webgpu.enabled": true, "gfx.webgpu.ignore-blocklist": true };

/** Headless Firefox with WebGPU's prefs (and DIT_FIREFOX_PREFS), in a fresh profile; `env`: its environment. */
export async function launchFirefox({ env = process.env } = {}) {
  const prefs = { ...FIREFOX_PREFS, ...JSON.parse(process.env.DIT_FIREFOX_PREFS ?? "{}") };
  return puppeteer.launch({
    browser: "firefox",
    executablePath: firefoxPath,
    headless: true,
    env,
    extraPrefsFirefox: prefs,
    // A page's evaluate may wait for a whole model load.
    protocolTimeout: 2 * LOAD,
  });
}

/**
 * Throws unless `page` (a secure context: a page served from 127.0.0.1) has WebGPU with an adapter; the message says
 * which is missing and which pref turns it on. Returns the adapter's description for the log.
 */
export async function requireWebGpu(page) {
  const r = await page.evaluate(async () => {
    if (!("gpu" in navigator)) return { missing: "navigator.gpu" };
    const a = await navigator.gpu.requestAdapter();
    if (!a) return { missing: "an adapter" };
    const i = a.info;
    return { info: { vendor: i.vendor, architecture: i.architecture, description: i.description, fallback: i.isFallbackAdapter }, f16: a.features.has("shader-f16") };
  });
  if (r.missing === "navigator.gpu") {
    throw new Error("Firefox has no WebGPU here (navigator.gpu is missing): WebGPU is switched off (pref dom.webgpu.enabled), so the Firefox cases cannot run");
  }
  if (r.missing) {
    throw new Error("Firefox's WebGPU offers no adapter (navigator.gpu.requestAdapter() gave null): the driver is blocklisted (pref gfx.webgpu.ignore-blocklist) or has no Vulkan device, so the Firefox cases cannot run");
  }
  return r;
}
