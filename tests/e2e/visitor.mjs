// What a visitor does on the page (wait for the model, set the controls, generate, read the image), through
// `page.evaluate(fn, arg)` alone: the same calls drive Chromium (a Playwright page) and Firefox (a Puppeteer page over
// WebDriver BiDi). Each wait polls inside the page and gives up after LOAD with what the page shows.
import { LOAD } from "./browser.mjs";

/**
 * Waits until the page's model is loaded (Generate enabled) or its load failed (an error shown), and returns the
 * error shown, if any: `{ kind, text }` or null. Fails when the page has said for 20 s that its script did not run,
 * and with the page's status lines when neither happens in LOAD.
 */
export async function waitLoaded(page) {
  return page.evaluate(async (timeout) => {
    const end = performance.now() + timeout;
    const error = () => {
      const e = document.querySelector("[data-testid=error]");
      return !e || e.hidden ? null : { kind: e.dataset.kind, text: e.textContent };
    };
    let stuckSince = null;
    for (;;) {
      const gen = document.querySelector("[data-testid=generate]");
      if (error() || (gen && !gen.disabled)) return error();
      // The line index.html shows while the page's script has not run (visible once it is overdue, at once when the
      // style sheet failed too); shown for 20 s, the script is taken as failed.
      const stuck = document.querySelector("[data-testid=no-script]");
      stuckSince = stuck?.checkVisibility({ visibilityProperty: true }) ? (stuckSince ?? performance.now()) : null;
      if (stuckSince !== null && performance.now() - stuckSince > 20_000) throw new Error(`the page's script did not run; the page says: ${stuck.textContent}`);
      if (performance.now() > end) {
        const status = [document.querySelector("#adapter"), document.querySelector("#load-text")].map((p) => p?.textContent);
        throw new Error(`the model did not load in ${timeout / 1000} s; the page says: ${JSON.stringify(status)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }, LOAD);
}

/**
 * Sets the controls (`classLabel`, `steps`, `sampler`, `seed`, `cfg`, count 1), presses `button` (Generate, or the
 * sweep's or the blend's button) and waits until one more `selector` is shown; returns the RGBA pixels of the canvas
 * `image` (the `index`th element matching it, newest first), or throws the error the page shows.
 */
export async function run(page, settings, { button = "generate", selector = "[data-testid=result]", image = "[data-testid=result]", index = 0 } = {}) {
  return page.evaluate(
    async ({ s, button, selector, image, index, timeout }) => {
      const set = (id, v) => {
        const e = document.querySelector(`[data-testid=${id}]`);
        e.value = String(v);
        e.dispatchEvent(new Event("input", { bubbles: true }));
        e.dispatchEvent(new Event("change", { bubbles: true }));
      };
      set("steps", s.steps);
      set("sampler", s.sampler);
      set("seed", s.seed);
      set("cfg", s.cfg);
      set("count", 1);
      if (s.classLabel !== undefined) set("class-select", s.classLabel);
      for (const [id, v] of Object.entries(s.extra ?? {})) set(id, v);
      const before = document.querySelectorAll(selector).length;
      document.querySelector(`[data-testid=${button}]`).click();
      const end = performance.now() + timeout;
      for (;;) {
        const e = document.querySelector("[data-testid=error]");
        if (e && !e.hidden) throw new Error(`the page shows an error (${e.dataset.kind}): ${e.textContent}`);
        if (document.querySelectorAll(selector).length > before) break;
        if (performance.now() > end) throw new Error(`no new ${selector} in ${timeout / 1000} s`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const c = document.querySelectorAll(image)[index];
      return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
    },
    { s: settings, button, selector, image, index, timeout: LOAD },
  );
}

/** The largest difference between two RGBA pixel arrays of the same size. */
export function maxPixelDiff(a, b) {
  if (a.length !== b.length) throw new Error(`different sizes: ${a.length} and ${b.length} values`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** The page's own files kept by its service worker: each entry's path and its `Vary` header (null when none). */
export async function keptPageFiles(page) {
  return page.evaluate(async () => {
    const cache = await caches.open("dit-wasm-page-v1");
    const out = [];
    for (const req of await cache.keys()) out.push({ path: new URL(req.url).pathname, vary: (await cache.match(req, { ignoreVary: true })).headers.get("vary") });
    return out;
  });
}

/**
 * A visitor's offline path in one tab: the first visit to `server` (a fresh profile; `query`: a link's, e.g.
 * `?model=demo` for the DiT demo rather than the flow-map demo the page opens with), one image with `settings`, the
 * service worker ready; then the network gone (`server.offline(true)`), a reload of the same tab, and the same image
 * again. Returns both images' pixels and the files the worker kept; throws what the page says if it does not load.
 */
export async function offlineRevisit(page, server, settings, query = "") {
  await page.goto(`${server.url}/${query}`);
  const e = await waitLoaded(page);
  if (e) throw new Error(`first visit: the page shows an error (${e.kind}): ${e.text}`);
  const first = await run(page, settings);
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  const kept = await keptPageFiles(page);
  server.offline(true);
  try {
    await page.reload();
    const again = await waitLoaded(page);
    if (again) throw new Error(`offline reload: the page shows an error (${again.kind}): ${again.text}`);
    const controlled = await page.evaluate(() => !!navigator.serviceWorker.controller);
    const second = await run(page, settings);
    return { first, second, kept, controlled };
  } finally {
    server.offline(false);
  }
}
