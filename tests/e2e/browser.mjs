// What the browser tests share: the repository, the built site, Chromium's path and flags, the load timeout.
import path from "node:path";

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
export async function generate(page, { steps, sampler = "dpmpp2m", seed = 7, cfg = 4, count = 1, classLabel }) {
  await page.fill("[data-testid=steps]", String(steps));
  await page.selectOption("[data-testid=sampler]", sampler);
  await page.fill("[data-testid=seed]", String(seed));
  await page.fill("[data-testid=cfg]", String(cfg));
  await page.fill("[data-testid=count]", String(count));
  if (classLabel !== undefined) await page.selectOption("[data-testid=class-select]", String(classLabel));
  const before = await page.locator("[data-testid=result]").count();
  await page.click("[data-testid=generate]");
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=result]").length > n, before, { timeout: LOAD });
  return page.evaluate(() => {
    const c = document.querySelector("[data-testid=result]");
    return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
  });
}
