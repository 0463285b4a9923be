// The npm package as a user gets it: `npm pack` of www/lib, installed into a fresh Vite project next to nothing else
// (Vite from npm's cache where it is there, else from the registry, as on a fresh machine), built, and used to
// generate an image in Chromium (WebGPU on SwiftShader).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";

const repo = path.resolve(import.meta.dirname, "../..");

test("npm pack -> a fresh Vite project installs it and generates an image", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dit-wasm-app-"));
  const npm = (args, cwd) => execFileSync("npm", args, { cwd, stdio: ["ignore", "pipe", "inherit"] }).toString();
  const tgz = npm(["pack", path.join(repo, "www/lib"), "--pack-destination", dir, "--silent"], dir).trim().split("\n").pop();
  const listing = execFileSync("tar", ["tzf", path.join(dir, tgz)]).toString();
  for (const f of ["package/dist/index.js", "package/dist/index.d.ts", "package/dist/worker.js", "package/pkg/dit_wasm_bg.wasm"]) {
    assert.ok(listing.includes(f), `the tarball holds ${f}`);
  }
  const viteVersion = JSON.parse(fs.readFileSync(path.join(repo, "www/demo/node_modules/vite/package.json"))).version;
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "app", private: true, type: "module",
    dependencies: { "dit-wasm": `file:./${tgz}` }, devDependencies: { vite: viteVersion } }));
  fs.writeFileSync(path.join(dir, "vite.config.js"), `export default { base: "./", publicDir: ${JSON.stringify(path.join(repo, "models"))},
    optimizeDeps: { exclude: ["dit-wasm"] }, worker: { format: "es" } };\n`);
  fs.writeFileSync(path.join(dir, "index.html"), `<!doctype html><script type="module" src="./main.js"></script>`);
  fs.writeFileSync(path.join(dir, "main.js"), `import { createSampler } from "dit-wasm";
const s = await createSampler({ model: "./demo/dit", vae: "./demo/vae", cache: "none" });
const r = await s.generate({ classLabels: [1], steps: 4, sampler: "ddim", seed: 3 });
window.__done = { width: r.width, count: r.images.length, sum: r.images[0].reduce((a, b) => a + b, 0) };
s.dispose();
`);
  npm(["install", "--prefer-offline", "--no-audit", "--no-fund", "--silent"], dir);
  execFileSync("npx", ["vite", "build", "--logLevel", "warn"], { cwd: dir, stdio: "inherit" });

  const server = await serve(path.join(dir, "dist"));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--no-sandbox"] });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.log("page error:", e.message));
    await page.goto(`${server.url}/`);
    const done = await page.waitForFunction(() => window.__done, null, { timeout: 300_000 });
    const v = await done.jsonValue();
    console.log("fresh project generated:", v);
    assert.equal(v.count, 1);
    assert.ok(v.width > 0 && v.sum > 0);
  } finally {
    await browser.close();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
