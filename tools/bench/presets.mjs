// One DiT/SiT forward per paper preset (S/2, B/2, L/2, XL/2 at 256 px; batch 2, one guided image; random weights, so
// nothing is downloaded), natively (`dit bench --preset P --random-weights --json`) and in headless Chromium
// (bench.html?forward=P: the package's benchForward), and what one image's network evaluations take from it: K steps
// of a one-evaluation-per-step sampler (Euler for a SiT, DDIM for a DiT) are K forwards. SiT's presets are DiT's
// network, so the figures are the same for both families.
// Build first: scripts/build-site.sh and cargo build --release --bin dit.
// Usage: node tools/bench/presets.mjs [--presets S/2,B/2] [--repeat 2] [--steps 50] [--skip-browser] [--skip-native]
import { execFileSync } from "node:child_process";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../../tests/e2e/server.mjs";

const repo = path.resolve(import.meta.dirname, "../..");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const presets = arg("--presets", "S/2,B/2,L/2,XL/2").split(",");
const repeat = Number(arg("--repeat", "2"));
const steps = Number(arg("--steps", "50"));
const dit = process.env.DIT_BIN ?? path.join(repo, "target/release/dit");
const rows = [];

let browser, server, context;
if (!process.argv.includes("--skip-browser")) {
  server = await serve(path.join(repo, "www/demo/dist"));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--no-sandbox"] });
  context = await browser.newContext();
}

for (const preset of presets) {
  const row = { preset };
  if (!process.argv.includes("--skip-native")) {
    const out = execFileSync(dit, ["bench", "--preset", preset, "--random-weights", "--repeat", String(repeat), "--no-baseline", "--json"],
      { encoding: "utf8", maxBuffer: 1 << 26 });
    const r = JSON.parse(out);
    row.native_ms = r.bench?.ms_per_forward ?? r.ms_per_forward;
    row.native_adapter = r.adapter?.name ?? r.adapter;
  }
  if (context) {
    const page = await context.newPage();
    await page.goto(`${server.url}/bench.html?forward=${encodeURIComponent(preset)}&repeat=${repeat}`);
    await page.waitForFunction(() => !document.getElementById("result").hidden, null, { timeout: 3_600_000 });
    const r = JSON.parse(await page.locator("#result").textContent());
    await page.close();
    if (r.error) throw new Error(`browser bench ${preset}: ${r.error}: ${r.message}`);
    row.browser_ms = r.bench.ms_per_forward;
  }
  rows.push(row);
  const fmt = (ms) => (ms === undefined ? "-" : `${ms.toFixed(0)} ms; ${steps} steps ${(ms * steps / 1000).toFixed(1)} s`);
  console.log(`${preset}: native ${fmt(row.native_ms)} | browser ${fmt(row.browser_ms)}`);
}
if (process.argv.includes("--json")) console.log(JSON.stringify({ steps, repeat, rows }));
await browser?.close();
server?.close();
