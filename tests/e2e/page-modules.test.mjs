// The page's modules that need no browser (www/demo/src: classes.ts, settings.ts, png.ts, device.ts, compiled here
// with TypeScript): the class search over ImageNet's names and their WordNet synonyms, the settings' round trips
// through a link and a PNG's `parameters` text, the tEXt chunk itself, and the GPU line's words for what browsers say
// of their adapter. The browser drives the same code in page-product.test.mjs (and firefox.test.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { repo } from "./browser.mjs";

const demo = path.join(repo, "www/demo");
const ts = createRequire(path.join(demo, "package.json"))("typescript");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dit-page-modules-"));
/** Imports www/demo/src/NAME.ts (a module without imports) compiled to JavaScript. */
async function load(name) {
  const js = ts.transpileModule(fs.readFileSync(path.join(demo, `src/${name}.ts`), "utf8"), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  fs.writeFileSync(path.join(tmp, `${name}.mjs`), js);
  return import(path.join(tmp, `${name}.mjs`));
}
const { classEntries, searchClasses } = await load("classes");
const settings = await load("settings");
const png = await load("png");
const device = await load("device");
const read = (f) => JSON.parse(fs.readFileSync(path.join(demo, "src", f), "utf8"));
const entries = classEntries(read("imagenet-classes.json"), read("imagenet-synonyms.json"));

test("ImageNet names, synonyms and numbers find their class first", () => {
  for (const [query, index] of [
    ["golden retriever", 207],
    ["Golden Retriever", 207],
    ["tabby cat", 281],
    ["tabby", 281],
    ["281", 281],
    ["281 · tabby", 281],
    ["7", 7],
    ["great white", 2],
    ["man-eater", 2], // a synonym only: "great white shark, white shark, man-eater, man-eating shark"
    ["puma", 286], // "cougar, puma, catamount, mountain lion, painter, panther, Felis concolor"
    ["espresso", 967],
  ]) {
    const found = searchClasses(entries, query);
    console.log(`${JSON.stringify(query)} -> ${found.slice(0, 3).map((e) => `${e.index} ${e.name}`).join(", ")}${found.length > 3 ? ", …" : ""}`);
    assert.equal(found[0]?.index, index, query);
  }
  assert.equal(searchClasses(entries, "retriever").length, 5, "five retrievers");
  assert.deepEqual(searchClasses(entries, "no such class"), []);
  assert.equal(searchClasses(entries, "").length, 1000);
});

const FULL = {
  model: "hf://nyu-visionx/SiT-collections@main/SiT-S-2-256.pt#arch=sit&heads=6",
  vae: "hf://stabilityai/sd-vae-ft-ema@main",
  classLabel: 207,
  seed: 123456789,
  cfgScale: 1.5,
  steps: 250,
  sampler: "euler-maruyama",
  cfgChannels: "all",
  blend: { with: 281, alpha: 0.25 },
  batch: { count: 4, index: 3 },
};

test("settings survive a link and a PNG's parameters text, every field", () => {
  for (const s of [FULL, { model: "demo", classLabel: 0, seed: 0, cfgScale: 4, steps: 8, sampler: "ddim", cfgChannels: "official" }]) {
    const query = settings.toQuery(s, { endpoint: "http://127.0.0.1:1234" });
    const fromLink = settings.fromQuery(new URLSearchParams(query.slice(1)));
    const text = settings.toPngText(s, "golden retriever", 256);
    console.log(`${query}\n${JSON.stringify(text)}`);
    assert.deepEqual(fromLink, s);
    assert.deepEqual(settings.fromPngText(text), s);
  }
  assert.equal(settings.fromQuery(new URLSearchParams("model=demo")), null, "a link without a seed names a model only");
  assert.throws(() => settings.fromPngText("a picture\nSteps: 20, Sampler: Euler a"), /no class and seed/);
});

test("a tEXt chunk written after IHDR is read back; a corrupt CRC or another keyword is not", () => {
  const icon = new Uint8Array(fs.readFileSync(path.join(demo, "static/icon-192.png")));
  const text = settings.toPngText(FULL, "golden retriever", 256);
  const out = png.withText(icon, "parameters", text);
  assert.equal(out.length, icon.length + 12 + "parameters".length + 1 + text.length);
  assert.equal(png.readText(out, "parameters"), text);
  assert.equal(png.readText(out, "Comment"), null);
  assert.equal(png.readText(icon, "parameters"), null);
  const bad = out.slice();
  bad[33 + 8 + 3] ^= 1; // a byte of the new chunk's data (after the signature, IHDR, and the chunk's length and type)
  assert.equal(png.readText(bad, "parameters"), null, "a chunk whose CRC does not match is not read");
  assert.throws(() => png.readText(new Uint8Array([1, 2, 3]), "parameters"), /not a PNG/);
});

test("the GPU line names the device from what the browser says, and says when the browser names nothing", () => {
  const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0";
  const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
  const SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 26_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1";
  const info = (vendor, architecture, description, isFallbackAdapter) => ({ vendor, architecture, description, isFallbackAdapter });
  const web = (device_type = "Other") => ({ name: "", device_type });
  for (const [got, want] of [
    // Firefox on lavapipe (this machine): nothing named, a fallback adapter.
    [device.deviceName(info("", "", "", true), web("Cpu"), FIREFOX), "a software renderer on the processor (slow), which Firefox does not name"],
    // Firefox on a GPU.
    [device.deviceName(info("", "", "", false), web(), FIREFOX), "a GPU that Firefox does not name"],
    // Chromium on SwiftShader (this machine), and on GPUs.
    [device.deviceName(info("google", "swiftshader", "", true), web("Cpu"), CHROME), "SwiftShader, a software renderer on the processor (slow)"],
    [device.deviceName(info("nvidia", "ampere", "", false), web(), CHROME), "NVIDIA GPU (ampere)"],
    [device.deviceName(info("intel", "", "", false), web(), CHROME), "Intel GPU"],
    [device.deviceName(info("apple", "metal-3", "", false), web(), SAFARI), "Apple GPU (metal-3)"],
    [device.deviceName(info("microsoft", "", "", true), web("Cpu"), CHROME), "Microsoft's software renderer on the processor (slow)"],
    // A description, from the browser or natively from the driver.
    [device.deviceName(info("nvidia", "ampere", "NVIDIA GeForce RTX 3060", false), web(), CHROME), "NVIDIA GeForce RTX 3060"],
    [device.deviceName(null, { name: "llvmpipe (LLVM 15.0.6, 256 bits)", device_type: "Cpu" }, ""), "llvmpipe, a software renderer on the processor (slow)"],
    // Nothing asked of the browser (it refused), nothing reported.
    [device.deviceName(null, web(), SAFARI), "a GPU that Safari does not name"],
    [device.deviceName(null, web(), "curl/8"), "a GPU that this browser does not name"],
  ]) {
    console.log(JSON.stringify(got));
    assert.equal(got, want);
  }
});
