// The page's class search (www/demo/src/classes.ts, compiled here with TypeScript) over ImageNet's names and their
// WordNet synonyms: what people type finds the class they mean. No browser: the combobox itself is driven in
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
const js = ts.transpileModule(fs.readFileSync(path.join(demo, "src/classes.ts"), "utf8"), {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
}).outputText;
const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "dit-classes-")), "classes.mjs");
fs.writeFileSync(out, js);
const { classEntries, searchClasses } = await import(out);
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
