// One image from a flow map against one from DiT with 50 guided DDIM steps, on the same-sized network with random
// weights (nothing downloaded), natively (`dit bench --sample-steps`, lavapipe here) and in the browser (the package's
// benchImage on bench.html, headless Chromium: SwiftShader here), in one run. Each row times a whole image twice (its
// network calls, then the SD VAE decode) and reports the second, split into the sampling and the decode; the ratios
// are against the DiT row of the same runtime. On a CPU adapter the 256 px decode alone takes about as long as 50
// guided S/2 steps, so the whole image gains less than the sampling.
//
//   node tools/bench/flowmap.mjs [--preset XL/2] [--res 256] [--native-only | --browser-only] [--json]
//
// Needs the release `dit` (cargo build --release) and the built site (scripts/build-site.sh; DIST=<dir> serves another).
import { execFileSync } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";
import { repo, site, chromiumPath, ARGS } from "../../tests/e2e/browser.mjs";
import { serve } from "../../tests/e2e/server.mjs";

const { values: a } = parseArgs({
  options: {
    preset: { type: "string", default: "XL/2" },
    res: { type: "string", default: "256" },
    "native-only": { type: "boolean", default: false },
    "browser-only": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (a.help) {
  console.log("usage: node tools/bench/flowmap.mjs [--preset XL/2] [--res 256] [--native-only | --browser-only] [--json]");
  process.exit(0);
}

/** The rows: DiT's 50 guided DDIM steps (the baseline), and the flow maps at the presets' step counts. */
const ROWS = [
  { name: "DiT, 50 DDIM steps, guidance 4", arch: "dit", steps: 50, sampler: "ddim" },
  { name: "DMF, 1 step", arch: "dmf", steps: 1 },
  { name: "MeanFlow / α-Flow, 2 steps", arch: "meanflow", steps: 2 },
  { name: "DMF, 4 steps", arch: "dmf", steps: 4 },
];

const say = (...m) => (a.json ? console.error : console.log)(...m);
const line = (g) =>
  `${g.seconds.toFixed(2)} s: sampling ${g.sampling_seconds.toFixed(2)} s (${g.image_forwards} network calls), decode ` +
  `${g.decode_seconds.toFixed(2)} s; first run ${g.seconds_first.toFixed(2)} s`;
const result = { preset: a.preset, res: Number(a.res), native: [], browser: [] };

if (!a["browser-only"]) {
  const dit = path.join(process.env.CARGO_TARGET_DIR ?? path.join(repo, "target"), "release/dit");
  for (const r of ROWS) {
    const args = ["bench", "--preset", a.preset, "--res", a.res, "--random-weights", "--arch", r.arch, "--sample-steps", String(r.steps),
      ...(r.sampler ? ["--sampler", r.sampler] : []), "--no-baseline", "--repeat", "1", "--warmup", "0", "--json"];
    const out = JSON.parse(execFileSync(dit, args, { encoding: "utf8", maxBuffer: 1 << 26 }));
    const g = out.generate_one_image;
    result.native.push({ ...r, adapter: out.adapter?.name, ...g });
    say(`native ${r.name}: ${line(g)}`);
  }
}

if (!a["native-only"]) {
  const { chromium } = await import("playwright-core");
  const server = await serve(process.env.DIST ?? site);
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--enable-unsafe-webgpu", ...ARGS] });
  try {
    for (const r of ROWS) {
      const page = await browser.newPage();
      const q = new URLSearchParams({ image: a.preset, res: a.res, arch: r.arch, steps: String(r.steps), ...(r.sampler ? { sampler: r.sampler } : {}) });
      await page.goto(`${server.url}/bench.html?${q}`);
      await page.waitForFunction(() => !document.querySelector("[data-testid=bench-result]").hidden, null, { timeout: 3_600_000 });
      const out = JSON.parse(await page.locator("[data-testid=bench-result]").textContent());
      if (out.error) throw new Error(`${r.name} in Chromium: ${out.error}: ${out.message}`);
      const g = out.generate_one_image;
      result.browser.push({ ...r, ...g });
      say(`Chromium ${r.name}: ${line(g)}`);
      await page.close();
    }
  } finally {
    await browser.close();
    server.close();
  }
}

for (const side of ["native", "browser"]) {
  const rows = result[side];
  if (!rows.length) continue;
  const base = rows[0];
  for (const r of rows) {
    r.sampling_vs_dit = base.sampling_seconds / r.sampling_seconds;
    r.image_vs_dit = base.seconds / r.seconds;
    r.calls_vs_dit = base.image_forwards / r.image_forwards;
  }
  say(`\n${side} (${a.preset} at ${a.res} px, random weights):`);
  say("| image | network calls | sampling (s) | DiT's sampling time / this | whole image with the decode (s) | DiT's / this |");
  say("|---|---|---|---|---|---|");
  for (const r of rows) {
    say(`| ${r.name} | ${r.image_forwards} | ${r.sampling_seconds.toFixed(2)} | ${r.sampling_vs_dit.toFixed(1)}x | ` +
      `${r.seconds.toFixed(2)} | ${r.image_vs_dit.toFixed(1)}x |`);
  }
}
if (a.json) console.log(JSON.stringify(result));
