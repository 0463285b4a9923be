// The page as a product, in Chromium driven by playwright-core on the embedded demo model: a clean load (no failed
// request, the favicon and the app manifest's icons served, the manifest without errors), the class search, axe-core's
// accessibility rules in light and dark, a phone's width, a result's link and its PNG's `parameters` chunk reproducing
// it, the guidance sweep and the class blend. Screenshots (desktop light and dark, phone) go to test-results/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { ARGS, chromiumPath, errorKind, LOAD, repo, site } from "./browser.mjs";

const results = path.join(repo, "test-results");
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let server, browser, context, page;
/** Requests that failed or answered >= 400 on the main page, from before its first byte. */
const failures = [];

before(async () => {
  fs.mkdirSync(results, { recursive: true });
  server = await serve(site);
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
});
after(async () => {
  await browser?.close();
  server?.close();
});

/** Opens `query` in a new page and waits until the model is loaded (or an error shows). */
async function open(query = "", watch = null) {
  const p = await context.newPage();
  p.on("pageerror", (e) => console.log("page error:", e.message));
  if (watch) {
    p.on("requestfailed", (r) => watch.push(`${r.url()} failed: ${r.failure()?.errorText}`));
    p.on("response", (r) => r.status() >= 400 && watch.push(`${r.url()} answered ${r.status()}`));
  }
  await p.goto(`${server.url}/${query}`);
  await p.waitForFunction(
    () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden,
    null,
    { timeout: LOAD },
  );
  return p;
}

/** The RGBA pixels of a canvas. */
const pixelsOf = (locator) => locator.evaluate((c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data));

function maxDiff(a, b) {
  assert.equal(a.length, b.length, "same image size");
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Clicks `button` and waits until `selector` matches more elements than before (or an error shows). */
async function runAndWait(p, button, selector) {
  const before = await p.locator(selector).count();
  await p.click(button);
  await p.waitForFunction(
    ([s, n]) => document.querySelectorAll(s).length > n || !document.querySelector("[data-testid=error]").hidden,
    [selector, before],
    { timeout: LOAD },
  );
  assert.equal(await errorKind(p), null, "no error");
}

async function setSettings(p, { steps = 8, sampler = "ddim", seed = 11, cfg = 4 } = {}) {
  await p.fill("[data-testid=steps]", String(steps));
  await p.selectOption("[data-testid=sampler]", sampler);
  await p.fill("[data-testid=seed]", String(seed));
  await p.fill("[data-testid=cfg]", String(cfg));
  await p.fill("[data-testid=count]", "1");
}

/** axe-core's serious and critical violations on `p` now. */
async function axeViolations(p) {
  // Evaluated through DevTools: the page's CSP refuses inline scripts, so addScriptTag would be blocked.
  if (!(await p.evaluate(() => "axe" in window))) await p.evaluate(axeSource);
  const r = await p.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
/** CRC-32 as PNG chunks carry it, computed here independently of the page. */
function crc(bytes) {
  let c = 0xffffffff;
  for (const x of bytes) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG chunk: length, type, data, CRC. */
function pngChunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc(body), 8 + data.length);
  return out;
}

/** PNG chunks, read here independently of the page: [{ type, data, crcOk }]. */
function pngChunks(buf) {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  const chunks = [];
  for (let at = 8; at < buf.length; ) {
    const len = buf.readUInt32BE(at);
    const type = buf.subarray(at + 4, at + 8).toString("latin1");
    chunks.push({ type, data: buf.subarray(at + 8, at + 8 + len), crcOk: crc(buf.subarray(at + 4, at + 8 + len)) === buf.readUInt32BE(at + 8 + len) });
    at += 12 + len;
  }
  return chunks;
}

let first; // the first result's pixels and link

test("a load has no failed request; the favicon, the manifest and its icons are served; the manifest has no errors", async () => {
  page = await open("?model=demo", failures);
  assert.equal(await errorKind(page), null, "no error");
  const icons = await page.evaluate(async () => {
    const links = [...document.querySelectorAll("link[rel~=icon], link[rel=manifest], link[rel=apple-touch-icon]")].map((l) => l.href);
    const manifest = await (await fetch(document.querySelector("link[rel=manifest]").href)).json();
    const all = [...links, ...manifest.icons.map((i) => new URL(i.src, document.querySelector("link[rel=manifest]").href).href)];
    return { manifest, answers: await Promise.all(all.map(async (u) => [u, (await fetch(u)).status])) };
  });
  console.log("icons:", icons.answers.map(([u, s]) => `${u.replace(server.url, "")} ${s}`).join(", "));
  for (const [u, s] of icons.answers) assert.equal(s, 200, u);
  assert.ok(icons.manifest.icons.some((i) => i.sizes === "192x192") && icons.manifest.icons.some((i) => i.sizes === "512x512"), "192 and 512 px icons");
  assert.equal(icons.manifest.display, "standalone");
  const cdp = await context.newCDPSession(page);
  const m = await cdp.send("Page.getAppManifest");
  console.log("manifest errors:", m.errors);
  assert.deepEqual(m.errors, []);
  console.log("failed requests:", failures);
  assert.deepEqual(failures, []);
});

test("the class picker searches names and numbers; Enter generates; the caption names class and settings", async () => {
  const input = page.locator("[data-testid=class-select]");
  await input.fill("trou");
  const options = page.locator("#class-list [role=option]");
  assert.equal(await options.count(), 1, "one class matches “trou”");
  assert.match(await options.first().textContent(), /Trouser/);
  await input.press("Enter");
  assert.equal(await input.inputValue(), "1 · Trouser");
  assert.equal(await input.getAttribute("aria-expanded"), "false");
  await input.fill("8");
  await input.press("ArrowDown"); // the first match is 8 itself
  await input.press("Enter");
  assert.equal(await input.inputValue(), "8 · Bag");
  await setSettings(page);
  const before = await page.locator("[data-testid=result]").count();
  await page.press("[data-testid=seed]", "Enter");
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=result]").length > n, before, { timeout: LOAD });
  const caption = await page.locator("[data-testid=result-figure] figcaption").first().textContent();
  console.log("caption:", caption);
  assert.match(caption, /Bag/);
  assert.match(caption, /#8/);
  assert.match(caption, /seed 11 · guidance 4 · 8 steps · DDIM/);
  first = { pixels: await pixelsOf(page.locator("[data-testid=result]").first()), link: await page.locator("[data-testid=share-link]").first().getAttribute("href") };
  console.log("link:", first.link);
});

test("axe-core: no serious or critical violations, in light and in dark", async () => {
  for (const colorScheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme });
    const v = await axeViolations(page);
    console.log(`${colorScheme}:`, v.length ? v.map((x) => `${x.id} (${x.impact}): ${x.nodes.map((n) => n.target.join(" ")).join(", ")}`).join("; ") : "no serious or critical violations");
    assert.deepEqual(v.map((x) => x.id), []);
    await page.screenshot({ path: path.join(results, `page-${colorScheme}.png`) });
    // With the class list open (a listbox of options, one active).
    await page.locator("[data-testid=class-select]").fill("t");
    await page.locator("[data-testid=class-select]").press("ArrowDown");
    const open = await axeViolations(page);
    console.log(`${colorScheme}, the class list open (${await page.locator("#class-list [role=option]").count()} options):`, open.map((x) => x.id));
    assert.deepEqual(open.map((x) => x.id), []);
    await page.locator("[data-testid=class-select]").press("Escape");
    assert.equal(await page.locator("#class-list").isHidden(), true, "Escape closes the list");
  }
  await page.emulateMedia({ colorScheme: "light" });
});

test("a 390 px wide phone: no horizontal scrolling", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
  console.log(`390x844: scrollWidth ${width}`);
  assert.ok(width <= 390, `scrollWidth ${width} > 390`);
  await page.screenshot({ path: path.join(results, "page-phone.png") });
  await page.setViewportSize({ width: 1280, height: 900 });
});

test("Escape cancels a run; focus is visible on the controls", async () => {
  await setSettings(page, { steps: 200 });
  await page.click("[data-testid=generate]");
  await page.waitForFunction(() => /step [2-9]\d*\//.test(document.querySelector("[data-testid=progress-text]").textContent), null, { timeout: LOAD });
  await page.keyboard.press("Escape");
  await page.waitForFunction(() => document.querySelector("[data-testid=progress-text]").textContent === "Cancelled.", null, { timeout: 60_000 });
  // Tab to the seed: an outline of at least 2 px shows where the focus is.
  await page.focus("[data-testid=cfg]");
  await page.keyboard.press("Tab");
  const focus = await page.evaluate(() => {
    const e = document.activeElement;
    const s = getComputedStyle(e);
    return { id: e.id, outline: s.outlineStyle, width: parseFloat(s.outlineWidth) };
  });
  console.log("focus after Tab:", focus);
  assert.equal(focus.id, "steps");
  assert.ok(focus.outline !== "none" && focus.width >= 2, "a visible focus ring");
});

test("a downloaded PNG carries its settings in a `parameters` tEXt chunk, and opening it sets the controls", async () => {
  const link = page.locator("[data-testid=download]").first();
  await page.waitForFunction(() => document.querySelector("[data-testid=download]").hasAttribute("href"));
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  const file = path.join(results, "page-download.png");
  await download.saveAs(file);
  const chunks = pngChunks(fs.readFileSync(file));
  const text = chunks.filter((c) => c.type === "tEXt").map((c) => ({ ...c, key: c.data.subarray(0, c.data.indexOf(0)).toString("latin1") }));
  const params = text.find((c) => c.key === "parameters");
  assert.ok(params, "a tEXt chunk named parameters");
  assert.ok(params.crcOk, "its CRC is right");
  assert.equal(chunks[0].type, "IHDR");
  const value = params.data.subarray(params.data.indexOf(0) + 1).toString("latin1");
  console.log(`${download.suggestedFilename()}: parameters = ${JSON.stringify(value)}`);
  assert.match(value, /^Bag\n/);
  for (const kv of ["Class: 8", "Steps: 8", "Sampler: ddim", "CFG scale: 4", "Seed: 11", "Guidance channels: official", "Model: demo"]) assert.ok(value.includes(kv), kv);
  // Change the controls, then read them back from the file.
  await setSettings(page, { steps: 3, sampler: "dpmpp2m", seed: 999, cfg: 1.5 });
  await page.locator("[data-testid=class-select]").fill("2");
  await page.locator("[data-testid=png-input]").setInputFiles(file);
  await page.waitForFunction(() => /set/.test(document.querySelector("[data-testid=png-state]").textContent));
  const controls = await page.evaluate(() => Object.fromEntries(["class-select", "seed", "steps", "cfg", "sampler", "cfg-channels"].map((t) => [t, document.querySelector(`[data-testid=${t}]`).value])));
  console.log("controls from the PNG:", controls);
  assert.deepEqual(controls, { "class-select": "8 · Bag", seed: "11", steps: "8", cfg: "4", sampler: "ddim", "cfg-channels": "official" });
  // A PNG made with another model: that model is chosen, and not downloaded until the visitor loads it.
  const buf = fs.readFileSync(file);
  const other = Buffer.concat([
    buf.subarray(0, 33),
    pngChunk("tEXt", Buffer.from(`parameters\0golden retriever\nClass: 207, Steps: 50, Sampler: ddim, CFG scale: 4, Seed: 42, Guidance channels: official, Size: 256x256, Model: hf-256`, "latin1")),
    ...pngChunks(buf).slice(1).filter((c) => c.type !== "tEXt").map((c) => pngChunk(c.type, c.data)),
  ]);
  const otherFile = path.join(results, "page-other-model.png");
  fs.writeFileSync(otherFile, other);
  await page.locator("[data-testid=png-input]").setInputFiles(otherFile);
  await page.waitForFunction(() => /Load model/.test(document.querySelector("[data-testid=png-state]").textContent));
  console.log("a PNG of DiT-XL/2 256:", await page.locator("[data-testid=png-state]").textContent());
  assert.equal(await page.locator("[data-testid=model-select]").inputValue(), "hf-256");
  assert.equal(await page.locator("[data-testid=seed]").inputValue(), "11", "the controls wait for that model");
  await page.selectOption("[data-testid=model-select]", "demo");
  // A PNG without the chunk is a typed error, not a silent nothing.
  await page.locator("[data-testid=png-input]").setInputFiles(path.join(site, "icon-192.png"));
  await page.waitForSelector("[data-testid=error]:not([hidden])");
  const e = await errorKind(page);
  console.log("a PNG without parameters ->", e);
  assert.equal(e.kind, "invalid-input");
  await page.evaluate(() => (document.querySelector("[data-testid=error]").hidden = true));
});

test("a result's link opened in a fresh page sets everything and gives the same pixels (one image, and the second of a batch); bad links are typed errors", async () => {
  const p = await open(first.link.replace(/^\//, ""));
  await p.waitForFunction(() => document.querySelectorAll("[data-testid=result]").length > 0 || !document.querySelector("[data-testid=error]").hidden, null, { timeout: LOAD });
  assert.equal(await errorKind(p), null);
  const px = await pixelsOf(p.locator("[data-testid=result]").first());
  const d = maxDiff(px, first.pixels);
  console.log(`link ${first.link}: max uint8 difference ${d} over ${px.length / 4} pixels`);
  assert.equal(d, 0);
  assert.equal(await p.locator("[data-testid=class-select]").inputValue(), "8 · Bag");
  assert.equal(await p.locator("[data-testid=seed]").inputValue(), "11");
  await p.close();
  // The second image of a batch of two (other noise than the first): its link makes the batch again, the same pixels.
  await setSettings(page, { seed: 5 });
  await page.locator("[data-testid=class-select]").fill("3");
  await page.fill("[data-testid=count]", "2");
  const n = await page.locator("[data-testid=result]").count();
  await runAndWait(page, "[data-testid=generate]", "[data-testid=result]");
  await page.waitForFunction((k) => document.querySelectorAll("[data-testid=result]").length >= k + 2, n);
  const second = page.locator("[data-testid=result-figure]").nth(1);
  assert.match(await second.locator("figcaption").textContent(), /image 2 of 2/);
  const batchPixels = await pixelsOf(second.locator("[data-testid=result]"));
  const batchLink = await second.locator("[data-testid=share-link]").getAttribute("href");
  await page.fill("[data-testid=count]", "1");
  const b = await open(batchLink.replace(/^\//, ""));
  await b.waitForFunction(() => document.querySelectorAll("[data-testid=result]").length >= 2 || !document.querySelector("[data-testid=error]").hidden, null, { timeout: LOAD });
  const bd = maxDiff(await pixelsOf(b.locator("[data-testid=result-figure]").nth(1).locator("[data-testid=result]")), batchPixels);
  const other = maxDiff(await pixelsOf(b.locator("[data-testid=result-figure]").nth(0).locator("[data-testid=result]")), batchPixels);
  console.log(`batch link ${batchLink}: image 2 max difference ${bd}; image 1 differs from it by ${other}`);
  assert.equal(bd, 0);
  assert.ok(other > 0, "the two images of a batch differ");
  await b.close();
  // A link naming a class the model does not have: a typed error, nothing generated.
  const bad = await open("?model=demo&class=50&seed=1&cfg=4&steps=4&sampler=ddim&channels=official");
  const e = await errorKind(bad);
  console.log("a link with class 50 ->", e);
  assert.equal(e?.kind, "invalid-input");
  assert.match(e.text, /Class 50/);
  assert.equal(await bad.locator("[data-testid=result]").count(), 0);
  await bad.close();
  // A SiT's sampler on the demo DiT: a typed error rather than an image made with another sampler.
  const flow = await open("?model=demo&class=1&seed=1&cfg=4&steps=4&sampler=euler&channels=official");
  const fe = await errorKind(flow);
  console.log("a link with sampler euler on a DiT ->", fe);
  assert.equal(fe?.kind, "invalid-input");
  assert.match(fe.text, /euler/);
  assert.equal(await flow.locator("[data-testid=result]").count(), 0);
  await flow.close();
});

test("installable (Chromium names no reason against it); offline, once the page and the model were loaded, it opens and generates", async () => {
  await page.evaluate(() => navigator.serviceWorker.ready);
  const p = await context.newPage();
  await p.goto(`${server.url}/?model=demo`);
  await p.evaluate(() => navigator.serviceWorker.ready);
  const cdp = await context.newCDPSession(p);
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  console.log("installability errors:", installabilityErrors);
  // A test context is like an incognito window, where nothing installs; nothing else may stand in the way.
  assert.deepEqual(installabilityErrors.filter((e) => e.errorId !== "in-incognito"), []);
  await context.setOffline(true);
  try {
    await p.reload();
    await p.waitForFunction(
      () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden,
      null,
      { timeout: LOAD },
    );
    const controlled = await p.evaluate(() => !!navigator.serviceWorker.controller);
    console.log("offline reload: controlled by the service worker:", controlled, "error:", await errorKind(p));
    assert.ok(controlled);
    assert.equal(await errorKind(p), null);
    await setSettings(p);
    await p.locator("[data-testid=class-select]").fill("8");
    await runAndWait(p, "[data-testid=generate]", "[data-testid=result]");
    assert.equal(maxDiff(await pixelsOf(p.locator("[data-testid=result]").first()), first.pixels), 0, "the same image offline");
  } finally {
    await context.setOffline(false);
    await p.close();
  }
});

test("a guidance sweep: one labelled cell per value, the same seed, different images", async () => {
  await setSettings(page);
  await page.locator("[data-testid=class-select]").fill("8");
  await page.selectOption("[data-testid=sweep-kind]", "cfg");
  await page.fill("[data-testid=sweep-values]", "1, 4, 8");
  await runAndWait(page, "[data-testid=sweep-run]", "[data-testid=sweep]");
  const grid = page.locator("[data-testid=sweep]").first();
  const labels = await grid.locator("[data-testid=sweep-cell] .label").allTextContents();
  console.log("sweep:", await grid.locator(":scope > figcaption").textContent(), labels);
  assert.deepEqual(labels, ["guidance 1", "guidance 4", "guidance 8"]);
  const imgs = await Promise.all([0, 1, 2].map((i) => pixelsOf(grid.locator("[data-testid=sweep-image]").nth(i))));
  const d = [maxDiff(imgs[0], imgs[1]), maxDiff(imgs[1], imgs[2]), maxDiff(imgs[0], imgs[2])];
  console.log("sweep cells, max differences 1-4, 4-8, 1-8:", d);
  assert.ok(d.every((x) => x > 0), "each guidance gives another image");
  // Guidance 4 with the seed and steps of the first result is that result.
  assert.equal(maxDiff(imgs[1], first.pixels), 0, "the guidance-4 cell equals the plain result");
  // Values that are not a list of numbers: a typed error naming the bad one, nothing run.
  await page.fill("[data-testid=sweep-values]", "2, lots");
  await page.click("[data-testid=sweep-run]");
  await page.waitForSelector("[data-testid=error]:not([hidden])");
  const e = await errorKind(page);
  console.log("sweep values “2, lots” ->", e);
  assert.equal(e.kind, "invalid-input");
  assert.match(e.text, /lots/);
  await page.fill("[data-testid=sweep-values]", "1, 4, 8");
});

test("a blend of two classes: five labelled cells, alpha 0 is the plain class's image, alpha 1 the other class's", async () => {
  await setSettings(page);
  await page.locator("[data-testid=class-select]").fill("8");
  await page.locator("[data-testid=blend-with]").fill("1");
  await runAndWait(page, "[data-testid=blend-run]", "[data-testid=blend]");
  const strip = page.locator("[data-testid=blend]").first();
  const labels = await strip.locator("[data-testid=blend-cell] .label").allTextContents();
  console.log("blend:", await strip.locator(":scope > figcaption").textContent(), labels);
  assert.deepEqual(labels, ["α 0", "α 0.25", "α 0.5", "α 0.75", "α 1"]);
  const imgs = await Promise.all(labels.map((_, i) => pixelsOf(strip.locator("[data-testid=blend-image]").nth(i))));
  const steps = imgs.slice(1).map((img, i) => maxDiff(imgs[i], img));
  console.log("blend: max differences between neighbours:", steps, "alpha 0 vs the plain result:", maxDiff(imgs[0], first.pixels));
  assert.equal(maxDiff(imgs[0], first.pixels), 0, "alpha 0 is the plain class (same seed and settings)");
  assert.ok(steps.every((d) => d > 0), "each alpha gives another image");
  // A cell's link reproduces that cell in a fresh page.
  const link = await strip.locator("[data-testid=blend-cell]").nth(2).locator("[data-testid=share-link]").getAttribute("href");
  const p = await open(link.replace(/^\//, ""));
  await p.waitForFunction(() => document.querySelectorAll("[data-testid=result]").length > 0 || !document.querySelector("[data-testid=error]").hidden, null, { timeout: LOAD });
  assert.equal(await errorKind(p), null);
  const d = maxDiff(await pixelsOf(p.locator("[data-testid=result]").first()), imgs[2]);
  console.log(`blend cell link ${link}: max uint8 difference ${d}; caption ${await p.locator("[data-testid=result-figure] figcaption").first().textContent()}`);
  assert.equal(d, 0);
  assert.match(await p.locator("[data-testid=result-figure] figcaption").first().textContent(), /Bag → Trouser.*α 0\.5 · seed 11/);
  await p.close();
  // Alpha 1 is the other class with the same seed.
  await page.locator("[data-testid=class-select]").fill("1");
  await runAndWait(page, "[data-testid=generate]", "[data-testid=result]");
  assert.equal(maxDiff(imgs[4], await pixelsOf(page.locator("[data-testid=result]").first())), 0, "alpha 1 is the other class");
});

test("the README's screenshots (desktop light and dark, phone), with results, a sweep and a blend; the phone still does not scroll sideways", async () => {
  await page.evaluate(() => window.scrollTo(0, 0));
  for (const colorScheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme });
    await page.screenshot({ path: path.join(results, `page-full-${colorScheme}.png`) });
  }
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 390, height: 844 });
  const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
  console.log(`390x844 with grids: scrollWidth ${width}`);
  assert.ok(width <= 390, `scrollWidth ${width} > 390`);
  await page.evaluate(() => {
    document.getElementById("gallery-h").scrollIntoView({ block: "start" });
    window.scrollBy(0, -12);
  });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({ path: path.join(results, "page-full-phone.png") });
  await page.setViewportSize({ width: 1280, height: 900 });
});
