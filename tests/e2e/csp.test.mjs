// The page's Content-Security-Policy (the <meta> in www/demo/index.html): the built page loads the demo model and
// generates with no policy violation (no inline script or style, nothing fetched from elsewhere), the policy is in
// force (an inline script is refused and reported), and hostile `?model=` / `?vae=` values are shown as text only,
// never parsed as HTML.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { ARGS, chromiumPath, generate, LOAD, site } from "./browser.mjs";

let server, browser, context;
before(async () => {
  server = await serve(site);
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  context = await browser.newContext();
  // Every violation the page's document reports, from the first script on.
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__violations.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample }),
    );
  });
});
after(async () => {
  await browser?.close();
  server?.close();
});

/** Opens the page at `query`, collecting console lines about the policy (page and workers) and page errors. */
async function open(query) {
  const page = await context.newPage();
  const reports = [];
  const isCsp = (text) => /Content Security Policy|Refused to/i.test(text);
  page.on("console", (m) => isCsp(m.text()) && reports.push(`console: ${m.text()}`));
  page.on("worker", (w) => w.on("console", (m) => isCsp(m.text()) && reports.push(`worker console: ${m.text()}`)));
  page.on("pageerror", (e) => reports.push(`page error: ${e.message}`));
  const cdp = await context.newCDPSession(page);
  await cdp.send("Log.enable");
  cdp.on("Log.entryAdded", ({ entry }) => isCsp(entry.text) && reports.push(`log (${entry.source}): ${entry.text}`));
  await page.goto(`${server.url}/${query}`);
  await page.waitForFunction(
    () => !document.querySelector("[data-testid=generate]").disabled || !document.querySelector("[data-testid=error]").hidden,
    null,
    { timeout: LOAD },
  );
  return { page, reports };
}

test("the built page has the policy and no inline script or style", () => {
  for (const file of ["index.html", "bench.html"]) {
    const html = fs.readFileSync(path.join(site, file), "utf8");
    const scripts = [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)];
    assert.ok(scripts.length > 0, `${file} has its scripts`);
    for (const s of scripts) assert.match(s[0], /\ssrc=/, `${file}: an inline script: ${s[0].slice(0, 80)}`);
    assert.doesNotMatch(html, /<style\b|\sstyle=|\son[a-z]+=/i, `${file}: inline style or event handler`);
  }
  const index = fs.readFileSync(path.join(site, "index.html"), "utf8");
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(index)?.[1];
  assert.ok(csp, "index.html carries the policy");
  console.log(`policy: ${csp}`);
  const directives = Object.fromEntries(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
  assert.deepEqual(directives["script-src"], ["'self'", "'wasm-unsafe-eval'"]);
  assert.deepEqual(directives["style-src"], ["'self'"]);
  for (const d of ["base-uri", "form-action", "object-src"]) assert.deepEqual(directives[d], ["'none'"], d);
});

test("loading the demo model and generating report no policy violation; an inline script is refused", async () => {
  const { page, reports } = await open("?model=demo");
  assert.equal(await page.locator("[data-testid=error]").isHidden(), true, "the demo model loaded");
  const pixels = await generate(page, { steps: 4, sampler: "ddim" });
  assert.ok(pixels.length > 0, "an image");
  const violations = await page.evaluate(() => window.__violations);
  console.log(`load + generate: ${violations.length} violation events, ${reports.length} console reports`);
  assert.deepEqual(violations, [], "no securitypolicyviolation event");
  assert.deepEqual(reports, [], "no CSP console message or page error");

  // The policy is in force and this test sees its reports: an injected inline script does not run.
  await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.__inlineRan = true;";
    document.head.append(s);
  });
  await page.waitForFunction(() => window.__violations.length > 0, null, { timeout: 10_000 });
  assert.equal(await page.evaluate(() => window.__inlineRan), undefined, "the inline script did not run");
  const refused = await page.evaluate(() => window.__violations);
  console.log(`injected inline script: ${JSON.stringify(refused)}`);
  assert.match(refused[0].directive, /^script-src/);
  await page.close();
});

test("hostile ?model= and ?vae= values are text, never HTML", async () => {
  const model = `<img src=x onerror="window.__pwned='model'">`;
  const vae = `"><svg onload="window.__pwned='vae'"><script>window.__pwned='script'</script>`;
  const { page } = await open(`?model=${encodeURIComponent(model)}&vae=${encodeURIComponent(vae)}`);
  await page.waitForTimeout(500); // an image's onerror would have fired by now
  const seen = await page.evaluate(() => ({
    pwned: window.__pwned ?? null,
    // Elements made from the values (the page's own images and icons are not).
    injected: [...document.querySelectorAll("img, svg, script, iframe, object")].filter((e) => e.outerHTML.includes("__pwned")).length,
    handlers: [...document.querySelectorAll("*")].filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).length,
    modelValue: document.querySelector("#model-url").value,
    vaeValue: document.querySelector("#vae-url").value,
    error: document.querySelector("[data-testid=error]").textContent,
    errorKind: document.querySelector("[data-testid=error]").getAttribute("data-kind"),
    errorElements: document.querySelector("[data-testid=error]").children.length,
  }));
  console.log(`hostile locations: ${JSON.stringify(seen)}`);
  assert.equal(seen.pwned, null, "no script or handler ran");
  assert.equal(seen.injected, 0, "no element was made from the values");
  assert.equal(seen.handlers, 0, "no element has an event-handler attribute");
  assert.equal(seen.modelValue, model, "the model field shows the value as typed");
  assert.equal(seen.vaeValue, vae, "the VAE field shows the value as typed");
  assert.ok(seen.errorKind, "the load fails with a typed error");
  assert.equal(seen.errorElements, 0, "the error message is plain text");
  assert.deepEqual(await page.evaluate(() => window.__violations), [], "nothing was even attempted");
  await page.close();
});
