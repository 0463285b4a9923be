// What the Rust crate and the npm package (www/lib) must agree on, kept once on each side and compared here:
//   - the `kind` strings of the wasm module's errors (Rust: `fn kind` of src/web.rs) and ERROR_KINDS (errors.ts);
//   - the Cache Storage names (Rust: the `CACHE_NAME` constants) and CACHE_NAMES (index.ts);
//   - the structs the wasm module serialises for JS, field by field with their JSON types (the adapter report, the
//     bench results), and the types of types.ts that describe them; the keys of the bench functions' JSON objects;
//   - the option structs it deserialises (names and optionality) and the worker's request params (protocol.ts).
// Both sides are read as text: the Rust anywhere under src/ (items are found by name, not by file), the TypeScript in
// www/lib/src. Each check prints both lists.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const repo = path.resolve(import.meta.dirname, "../..");
const LIB = "www/lib/src";

// ---- reading source text

/** `text` with its comments blanked out (newlines kept); strings, Rust char literals and lifetimes left alone. */
function stripComments(text) {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const two = text.slice(i, i + 2);
    let stop = i + 1;
    if (two === "//") {
      stop = text.indexOf("\n", i);
      if (stop < 0) stop = text.length;
      out += " ".repeat(stop - i);
      i = stop;
      continue;
    }
    if (two === "/*") {
      const end = text.indexOf("*/", i + 2);
      stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
      continue;
    }
    if (c === '"' || c === "`") {
      stop = stringEnd(text, i);
    } else if (c === "r" && /^r#*"/.test(text.slice(i, i + 8)) && !/\w/.test(text[i - 1] ?? "")) {
      const hashes = /^r(#*)"/.exec(text.slice(i))[1];
      const end = text.indexOf(`"${hashes}`, i + hashes.length + 2);
      stop = end < 0 ? text.length : end + 1 + hashes.length;
    } else if (c === "'") {
      // A char literal ('x', '\n', '"') is kept whole so that its quote opens no string; a lifetime is plain text.
      const m = /^'(\\.[^']*|[^\\'])'/.exec(text.slice(i, i + 12));
      if (m) stop = i + m[0].length;
    }
    out += text.slice(i, stop);
    i = stop;
  }
  return out;
}

/** The index just past the string literal that opens at `i` ("..." or `...`, with backslash escapes). */
function stringEnd(text, i) {
  let j = i + 1;
  while (j < text.length && text[j] !== text[i]) j += text[j] === "\\" ? 2 : 1;
  return j + 1;
}

/** The text between the bracket (`{`, `[` or `(`) at `open` and its match. */
function block(text, open) {
  const closer = { "{": "}", "[": "]", "(": ")" }[text[open]];
  assert.ok(closer, `no opening bracket at ${open}`);
  let depth = 0;
  for (let j = open; j < text.length; j++) {
    if (text[j] === '"') j = stringEnd(text, j) - 1;
    else if (text[j] === text[open]) depth++;
    else if (text[j] === closer && --depth === 0) return text.slice(open + 1, j);
  }
  throw new Error(`unbalanced ${text[open]} at ${open}`);
}

/** `text` split at `sep` outside brackets of any kind (`<>` included; `=>` is no bracket) and strings. */
function splitTopLevel(text, sep) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let j = 0; j < text.length; j++) {
    const c = text[j];
    if (c === '"') j = stringEnd(text, j) - 1;
    else if ("{[(<".includes(c)) depth++;
    else if ("}])>".includes(c) && !(c === ">" && text[j - 1] === "=")) depth--;
    else if (c === sep && depth === 0) {
      parts.push(text.slice(start, j));
      start = j + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** The string literals in `text`. */
const strings = (text) => [...text.matchAll(/"([^"\\]*)"/g)].map((m) => m[1]);

/** Every .rs file under src/, comments blanked out: `{ file, text }`. */
function rustSources(dir = "src") {
  return fs.readdirSync(path.join(repo, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return rustSources(rel);
    if (!e.name.endsWith(".rs")) return [];
    return [{ file: rel, text: stripComments(fs.readFileSync(path.join(repo, rel), "utf8")) }];
  });
}

const rust = rustSources();

/** Every match of `re` under src/: `{ file, text, m }`. */
const rustMatches = (re) =>
  rust.flatMap(({ file, text }) => [...text.matchAll(new RegExp(re.source, "g"))].map((m) => ({ file, text, m })));

/** The one match of `re` under src/ (there must be exactly one). */
function findRust(re, what) {
  const hits = rustMatches(re);
  const where = hits.length ? ` (${hits.map((h) => h.file).join(", ")})` : "";
  const why = `expected one ${what} under src/, found ${hits.length}${where}: if it moved, update this test`;
  assert.equal(hits.length, 1, why);
  return hits[0];
}

const tsSource = (file) => stripComments(fs.readFileSync(path.join(repo, LIB, file), "utf8"));

/** Prints both lists, then fails naming what is on one side only when they differ as sets. */
function assertSameSet(what, ts, rs) {
  console.log(`${what}\n  TypeScript ${ts.name}: ${JSON.stringify(ts.list)}`);
  console.log(`  Rust ${rs.name}: ${JSON.stringify(rs.list)}`);
  const onlyTs = ts.list.filter((x) => !rs.list.includes(x));
  const onlyRust = rs.list.filter((x) => !ts.list.includes(x));
  assert.ok(
    onlyTs.length + onlyRust.length === 0,
    `${what} differ: only in TypeScript (${ts.name}): ${JSON.stringify(onlyTs)}; ` +
      `only in Rust (${rs.name}): ${JSON.stringify(onlyRust)}`,
  );
}

// ---- Rust items

/** The attributes (`#[...]`) written just before index `at`, as one string. */
function attributesBefore(text, at) {
  return /((?:\s*#\[[^\]]*\])*)\s*(?:pub(?:\([^)]*\))?\s+)?$/.exec(text.slice(Math.max(0, at - 2000), at))?.[1] ?? "";
}

/** How serde renames fields or variants under the container's `#[serde(rename_all = "...")]`. */
function renamer(attrs) {
  const rule = /rename_all\s*=\s*"([^"]+)"/.exec(attrs)?.[1];
  const words = (s) => s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase().split("_").filter(Boolean);
  const rules = {
    undefined: (s) => s,
    lowercase: (s) => s.toLowerCase(),
    UPPERCASE: (s) => s.toUpperCase(),
    snake_case: (s) => words(s).join("_"),
    "kebab-case": (s) => words(s).join("-"),
    camelCase: (s) => words(s).map((w, i) => (i ? w[0].toUpperCase() + w.slice(1) : w)).join(""),
  };
  assert.ok(rule in rules, `serde rename_all = "${rule}" is not followed by this test: add it`);
  return rules[rule];
}

/** A Rust struct's fields as serde names them: `{ name, type, attrs }` in order; fields serde skips left out. */
function rustStruct(name) {
  const { file, text, m } = findRust(new RegExp(`\\bstruct\\s+${name}\\b[^;{]*\\{`), `\`struct ${name}\``);
  const rename = renamer(attributesBefore(text, m.index));
  const fields = [];
  for (const part of splitTopLevel(block(text, m.index + m[0].length - 1), ",")) {
    const a = /^((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?(\w+)\s*:\s*([\s\S]+)$/.exec(part.trim());
    if (!a) continue;
    const [, attrs, field, type] = a;
    assert.ok(!/flatten/.test(attrs), `${file}: ${name}.${field} is #[serde(flatten)]: this test does not follow it`);
    if (/serde\((?:[^)]*\b)?skip(?:_serializing)?\s*[,)]/.test(attrs)) continue;
    const renamed = /serde\((?:[^)]*,\s*)?rename\s*=\s*"([^"]+)"/.exec(attrs)?.[1];
    fields.push({ name: renamed ?? rename(field), type: type.trim(), attrs });
  }
  return { file, fields };
}

/** The variants of the Rust enum `name`: `{ variants: [name, ...], rename }`, or null where there is not one. */
function rustEnum(name) {
  const hits = rustMatches(new RegExp(`\\benum\\s+${name}\\b[^;{]*\\{`));
  if (hits.length !== 1) return null;
  const { text, m } = hits[0];
  const variants = splitTopLevel(block(text, m.index + m[0].length - 1), ",")
    .map((v) => v.replace(/#\[[^\]]*\]/g, "").trim())
    .filter(Boolean);
  return { variants, rename: renamer(attributesBefore(text, m.index)) };
}

const literalUnion = (values) => [...values].sort().map((v) => `"${v}"`).join(" | ");

/** A Rust type as the TypeScript type of its JSON, spelt as in types.ts. `names`: Rust struct -> its TS type. */
function jsonType(rustType, names) {
  const t = rustType.replace(/\s+/g, " ").trim();
  const array = (inner) => (inner.includes(" ") ? `(${inner})[]` : `${inner}[]`);
  if (t === "bool") return "boolean";
  if (/^(?:[ui](?:8|16|32|64|128|size)|f32|f64)$/.test(t)) return "number";
  if (/^(?:String|&(?:'\w+ )?str|Cow<'\w+, ?str>)$/.test(t)) return "string";
  const slice = /^&?\[(.+?)(?:; *\w+)?\]$/.exec(t);
  if (slice) return array(jsonType(slice[1], names));
  const generic = /^(?:\w+::)*(\w+)<([\s\S]+)>$/.exec(t);
  if (generic) {
    const [, base, args] = generic;
    const [first, second] = splitTopLevel(args, ",").map((s) => s.trim());
    if (base === "Vec" || base === "VecDeque") return array(jsonType(first, names));
    if (base === "Option") return `${jsonType(first, names)} | null`;
    if (base === "Box" || base === "Rc" || base === "Arc") return jsonType(first, names);
    if (base === "BTreeMap" || base === "HashMap") return `Record<string, ${jsonType(second, names)}>`;
  }
  const base = t.split("::").pop();
  if (names[base]) return names[base];
  const e = rustEnum(base);
  if (e && e.variants.every((v) => /^\w+$/.test(v))) return literalUnion(e.variants.map(e.rename));
  return base;
}

// ---- TypeScript items

/** A TypeScript type written one way: single spaces, unions of string literals sorted. */
function canonicalTs(type) {
  const t = type.replace(/\s+/g, " ").trim().replace(/^Array<(.+)>$/, "$1[]");
  const parts = splitTopLevel(t, "|").map((s) => s.trim());
  return parts.every((p) => /^"[^"]*"$/.test(p)) ? literalUnion(parts.map((p) => p.slice(1, -1))) : t;
}

/**
 * The members of the interface or object type `name` of `file`: `{ name, type, optional }`, index signatures left
 * out. Follows `extends Omit<T, "a" | ...>` and `= Omit<T, ...>` (T possibly namespaced, `Types.T`) to a T of types.ts or
 * protocol.ts.
 */
function tsType(file, name) {
  const text = tsSource(file);
  const decl = `export\\s+(?:interface\\s+${name}\\b([^{]*)\\{|type\\s+${name}\\s*=\\s*([^;{]*)([{;]))`;
  const m = new RegExp(decl).exec(text);
  assert.ok(m, `no \`export interface ${name}\` or \`export type ${name}\` in ${LIB}/${file}: update this test`);
  const heritage = (m[1] ?? m[2] ?? "").replace(/^\s*extends\s*/, "").trim();
  let members = [];
  if (heritage) {
    const omit = /^Omit<\s*(?:\w+\.)?(\w+)\s*,\s*([^>]+)>$/.exec(heritage);
    assert.ok(omit, `${file}: ${name} is built from \`${heritage}\`, which this test does not follow`);
    const declares = (f) => new RegExp(`export\\s+(?:interface|type)\\s+${omit[1]}\\b`).test(tsSource(f));
    const gone = strings(omit[2]);
    members = tsType(["types.ts", "protocol.ts"].find(declares), omit[1]).filter((f) => !gone.includes(f.name));
  }
  if (m[0].endsWith("{")) {
    for (const part of splitTopLevel(block(text, m.index + m[0].length - 1), ";")) {
      const a = /^\s*(?:readonly\s+)?(\w+)(\?)?\s*:\s*([\s\S]+?)\s*$/.exec(part);
      if (!a) continue;
      members = members.filter((f) => f.name !== a[1]);
      members.push({ name: a[1], type: canonicalTs(a[3]), optional: Boolean(a[2]) });
    }
  }
  return members;
}

// ---- the checks

test("error kinds: Rust's `fn kind` and ERROR_KINDS (errors.ts)", () => {
  const signature = /fn\s+kind\s*\(\s*\w+\s*:\s*&(?:crate::error::)?Error\s*\)\s*->\s*&'static\s+str\s*\{/;
  const { file, text, m } = findRust(signature, "`fn kind(e: &Error) -> &'static str` (the kind a JS caller sees)");
  const body = block(text, m.index + m[0].length - 1);
  const rustKinds = [...new Set([...body.matchAll(/=>\s*"([^"]+)"/g)].map((x) => x[1]))];
  assert.ok(!/(^|[\s|])_\s*=>/.test(body), `${file}: \`fn kind\` has a \`_ =>\` arm: name every Error variant`);
  const error = rustEnum("Error");
  assert.ok(error, "expected one `enum Error` under src/: if it moved, update this test");
  const unmapped = error.variants.map((v) => /^\w+/.exec(v)[0]).filter((v) => !new RegExp(`Error::${v}\\b`).test(body));
  assert.deepEqual(unmapped, [], `${file}: \`fn kind\` does not name these Error variants: ${unmapped.join(", ")}`);

  const ts = tsSource("errors.ts");
  const list = /export\s+const\s+ERROR_KINDS\s*=\s*\[/.exec(ts);
  assert.ok(list, `no \`export const ERROR_KINDS = [...]\` in ${LIB}/errors.ts`);
  const tsKinds = strings(block(ts, list.index + list[0].length - 1));
  assertSameSet("error kinds", { name: "ERROR_KINDS", list: tsKinds }, { name: `fn kind (${file})`, list: rustKinds });
});

test("Cache Storage names: Rust's CACHE_NAME constants and CACHE_NAMES (index.ts)", () => {
  const consts = rustMatches(/const\s+(\w*CACHE\w*)\s*:\s*&(?:'static\s+)?str\s*=\s*"([^"]*)"/).map(({ file, m }) => ({
    file,
    value: m[2],
  }));
  assert.ok(consts.length > 0, 'no `const ...CACHE...: &str = "..."` under src/: update this test');
  // A cache's name written as a literal anywhere else on either side is a copy that this test would not see.
  const versioned = /"dit-wasm-[\w-]*-v\d+"/g;
  for (const { file, text } of rust) {
    const named = (lit) => consts.some((c) => c.file === file && `"${c.value}"` === lit);
    const stray = [...text.matchAll(versioned)].filter((m) => !named(m[0]));
    assert.deepEqual(stray.map((m) => m[0]), [], `${file} writes a cache name outside a CACHE constant`);
  }
  const ts = tsSource("index.ts");
  const decl = /export\s+const\s+CACHE_NAMES\s*=\s*\{/.exec(ts);
  assert.ok(decl, `no \`export const CACHE_NAMES = {...}\` in ${LIB}/index.ts`);
  const tsNames = [...block(ts, decl.index + decl[0].length - 1).matchAll(/:\s*"([^"]*)"/g)].map((m) => m[1]);
  for (const file of fs.readdirSync(path.join(repo, LIB)).filter((f) => f.endsWith(".ts"))) {
    const count = [...tsSource(file).matchAll(versioned)].length;
    const expected = file === "index.ts" ? tsNames.length : 0;
    assert.equal(count, expected, `${LIB}/${file} writes a cache name outside CACHE_NAMES`);
  }
  assertSameSet(
    "Cache Storage names",
    { name: "CACHE_NAMES", list: tsNames },
    { name: [...new Set(consts.map((c) => c.file))].join(", "), list: consts.map((c) => c.value) },
  );
});

/** Rust structs the wasm module serialises for JS, and the types.ts types that describe them. */
const SERIALISED = {
  AdapterReport: "AdapterInfo",
  KernelTiming: "KernelTiming",
  LinearBench: "LinearBench",
  OpTiming: "OpTiming",
  ForwardBench: "ForwardBench",
  ImageBench: "ImageBench",
  LiveCounts: "GpuMemory",
  PipelineStats: "PipelineStats",
};

/**
 * The fields of Rust struct `rustName` and the members of `tsName` in `tsFile`: the same names, each optional on both
 * sides or neither (`optional(field)` says whether Rust's is), and `check(field, member)` for anything more.
 */
function sameFields(rustName, tsFile, tsName, optional, check = () => {}) {
  const { file, fields } = rustStruct(rustName);
  const members = tsType(tsFile, tsName);
  assertSameSet(
    `fields of ${rustName}`,
    { name: tsName, list: members.map((f) => f.name) },
    { name: `${rustName} (${file})`, list: fields.map((f) => f.name) },
  );
  for (const f of fields) {
    const t = members.find((x) => x.name === f.name);
    check(f, t);
    const why = `${tsName}.${f.name}: optional on one side only (Rust: ${f.attrs} \`${f.type}\`)`;
    assert.equal(t.optional, optional(f), why);
  }
}

for (const [rustName, tsName] of Object.entries(SERIALISED)) {
  test(`serialised fields: Rust's ${rustName} and ${tsName} (types.ts)`, () => {
    const skipped = (f) => /skip_serializing_if/.test(f.attrs);
    sameFields(rustName, "types.ts", tsName, skipped, (f, t) => {
      const json = jsonType(f.type, SERIALISED);
      assert.ok(t.type === json, `${tsName}.${f.name} is \`${t.type}\`, but Rust's \`${f.type}\` is \`${json}\` in JSON`);
    });
  });
}

/** The wasm functions that return the text of a `serde_json::json!` object, and the types.ts type of its parse. */
const JSON_RESULTS = { benchKernels: "KernelBench", benchForward: "BenchForwardResult", benchImage: "BenchImageResult" };

for (const [jsName, tsName] of Object.entries(JSON_RESULTS)) {
  test(`JSON keys: the wasm function ${jsName} and ${tsName} (types.ts)`, () => {
    const fn = findRust(new RegExp(`js_name\\s*=\\s*${jsName}\\b`), `\`#[wasm_bindgen(js_name = ${jsName})]\``);
    const json = /json!\s*\(\s*\{/.exec(fn.text.slice(fn.m.index));
    assert.ok(json, `${fn.file}: ${jsName} builds no \`json!({...})\` object: update this test`);
    const object = block(fn.text, fn.m.index + json.index + json[0].length - 1);
    const keys = splitTopLevel(object, ",").map((kv) => /^\s*"([^"]+)"\s*:/.exec(kv)?.[1]).filter(Boolean);
    assertSameSet(
      `keys of ${jsName}'s JSON`,
      { name: tsName, list: tsType("types.ts", tsName).map((f) => f.name) },
      { name: `${jsName} (${fn.file})`, list: keys },
    );
  });
}

/** Rust option structs the wasm API deserialises, and the worker's request params (protocol.ts) that fill them. */
const DESERIALISED = {
  CreateOptions: "CreateParams",
  GenerateOptions: "GenerateParams",
  BenchKernelsOptions: "BenchKernelsParams",
  BenchForwardOptions: "BenchForwardParams",
  BenchImageOptions: "BenchImageParams",
};

for (const [rustName, tsName] of Object.entries(DESERIALISED)) {
  test(`options: Rust's ${rustName} and ${tsName} (protocol.ts)`, () => {
    // Serde ignores a field it does not know: an option misspelt on one side would be dropped without a word.
    const defaulted = (f) => /^Option\s*</.test(f.type) || /serde\((?:[^)]*,\s*)?default\b/.test(f.attrs);
    sameFields(rustName, "protocol.ts", tsName, defaulted);
  });
}
