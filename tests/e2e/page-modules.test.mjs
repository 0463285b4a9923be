// The page's modules that need no browser (www/demo/src: classes.ts, settings.ts, png.ts, compiled here with
// TypeScript): the class search over ImageNet's names and their WordNet synonyms, the settings' round trips through a
// link and a PNG's `parameters` text, and the tEXt chunk itself. The browser drives the same code in
// page-product.test.mjs.
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
