// The wasm build (www/lib/pkg) in Node on Dawn (tools/bench/dawn.mjs, npm `webgpu`), on SwiftShader: the harness's
// JSON says the demo model's forward is finite, and its image is the native CLI's within 2 levels.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { maxDiff, nativeSample, repo } from "./browser.mjs";

const SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json";
const SAMPLE = ["--class", "3", "--cfg", "4", "--steps", "10", "--sampler", "dpmpp2m", "--seed", "7"];

test("Dawn harness on SwiftShader: a finite forward and the native image", () => {
  // scripts/setup.sh installs Chromium, which brings SwiftShader: its absence is a broken set-up, not a skip.
  assert.ok(fs.existsSync(SWIFTSHADER), `${SWIFTSHADER} is missing: run scripts/setup.sh --test (it installs chromium)`);
  const rgba = path.join(os.tmpdir(), `dit-dawn-${process.pid}.rgba`);
  const out = execFileSync(process.execPath, [path.join(repo, "tools/bench/dawn.mjs"), "--json", "--repeat", "1",
    ...SAMPLE, "--save-rgba", rgba], {
    env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER },
    encoding: "utf8",
  });
  const r = JSON.parse(out);
  const pixels = fs.readFileSync(rgba);
  fs.rmSync(rgba);
  console.log(`Dawn on ${r.adapter.description}: forward ${r.ms_per_forward.toFixed(1)} ms, image ${r.ms_per_image.toFixed(0)} ms`);
  assert.equal(r.output_finite, true, "the forward's output is finite");
  assert.ok(r.ms_per_forward > 0 && r.ms_per_image > 0);
  const native = nativeSample(["--model", path.join(repo, "models/demo/dit"), "--vae", path.join(repo, "models/demo/vae"), ...SAMPLE]);
  const d = maxDiff(native, [...pixels]);
  console.log(`Dawn image vs native dit sample: max difference ${d} levels`);
  assert.ok(d <= 2, `the Dawn image differs from the native one by ${d} levels`);
});

test("Dawn harness: --help prints its usage, an unknown option is one line and exit 1", () => {
  const run = (...args) => spawnSync(process.execPath, [path.join(repo, "tools/bench/dawn.mjs"), ...args], { encoding: "utf8" });
  const help = run("--help");
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: node tools\/bench\/dawn\.mjs \[--help \| -h\] \[--json\]/m);
  const bad = run("--stepz", "5");
  assert.equal(bad.status, 1);
  assert.equal(bad.stdout, "");
  assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  assert.match(bad.stderr, /Unknown option '--stepz'.*--help/);
});
