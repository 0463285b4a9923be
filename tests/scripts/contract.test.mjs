// What the wasm module and the npm package (www/lib) must agree on. The module's TypeScript declarations
// (www/lib/pkg/dit_wasm.d.ts) are written from the Rust types that cross the boundary (tsify: src/web/types.rs and
// the structs it names), so the Rust side is read from there, not from Rust source. Each package type is checked
// against its generated counterpart by the TypeScript compiler, both ways (each assignable to the other), less the
// members that only the package has (a worker, a signal, a callback). Needs the module built: scripts/build-web.sh.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const repo = path.resolve(import.meta.dirname, "../..");
const lib = path.join(repo, "www/lib");
const dts = path.join(lib, "pkg/dit_wasm.d.ts");
const tsc = path.join(lib, "node_modules/typescript/bin/tsc");

/**
 * Each check: a name, the package's type (W: the generated declarations, T: types.ts, P: protocol.ts, plus the
 * errors.ts and index.ts constants) and the generated type it must equal.
 */
const CHECKS = {
  "error kinds (errors.ts ERROR_KINDS)": ["DitErrorKind", "W.ErrorKind"],
  "Cache Storage names (index.ts CACHE_NAMES)": ["typeof CACHE_NAMES", "W.CacheNames"],
  "load progress": ['Omit<T.LoadProgress, "recovering">', "W.LoadProgress"],
  "adapter report": ["T.AdapterInfo", "W.AdapterReport"],
  "sampler info": ["T.SamplerInfo", "W.SamplerInfo"],
  images: ["T.Images", "W.Images"],
  "step event": ["T.StepEvent", "W.StepEvent"],
  "generate result": ["T.GenerateResult", "W.GenerateResult"],
  "GPU memory": ["T.GpuMemory", "W.LiveCounts"],
  "pipeline stats": ["T.PipelineStats", "W.PipelineStats"],
  "kernel bench": ["T.KernelBench", "W.KernelBench"],
  "forward bench result": ["T.BenchForwardResult", "W.BenchForwardResult"],
  "image bench result": ["T.BenchImageResult", "W.BenchImageResult"],
  "create options (protocol.ts)": ["P.CreateParams", "W.CreateOptions"],
  "generate options (protocol.ts)": ["P.GenerateParams", "W.GenerateOptions"],
  "benchKernels options (protocol.ts)": ["P.BenchKernelsParams", "W.BenchKernelsOptions"],
  "benchForward options (protocol.ts)": ["P.BenchForwardParams", "W.BenchForwardOptions"],
  "benchImage options (protocol.ts)": ["P.BenchImageParams", "W.BenchImageOptions"],
};

/** The TypeScript source that checks every pair, and the line of each check. */
function checkSource() {
  const at = (p) => JSON.stringify(path.join(lib, p));
  const lines = [
    `import type * as W from ${at("pkg/dit_wasm.js")};`,
    `import type * as T from ${at("src/types.js")};`,
    `import type * as P from ${at("src/protocol.js")};`,
    `import type { DitErrorKind } from ${at("src/errors.js")};`,
    `import type { CACHE_NAMES } from ${at("src/index.js")};`,
    // Index signatures (a package type's room for fields a later version adds) are left out of the comparison.
    "type Known<X> = X extends Function | ArrayBufferView ? X",
    "  : X extends readonly unknown[] ? { [K in keyof X]: Known<X[K]> }",
    "  : X extends object ? { [K in keyof X as string extends K ? never : K]: Known<X[K]> }",
    "  : X;",
    "type Extra<A, B> = Exclude<keyof Known<A>, keyof Known<B>>;",
  ];
  const lineOf = {};
  for (const [name, [pkg, gen]] of Object.entries(CHECKS)) {
    // Each assignable to the other, and the same members (an optional member on one side only is assignable).
    const both = `[(x: Known<${pkg}>): Known<${gen}> => x, (y: Known<${gen}>): Known<${pkg}> => y]`;
    const keys = `[] as unknown as [Extra<${pkg}, ${gen}>, Extra<${gen}, ${pkg}>]`;
    const n = lines.length;
    lines.push(`export const check${n} = ${both}; export const keys${n}: [never, never] = ${keys}; // ${name}`);
    lineOf[name] = lines.length;
  }
  return { text: lines.join("\n") + "\n", lineOf };
}

/** Runs tsc on `text` as a file of its own; its diagnostics ("" when none). */
function typeCheck(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dit-contract-"));
  const file = path.join(dir, "contract.ts");
  fs.writeFileSync(file, text);
  const args = [file, "--noEmit", "--strict", "--target", "ES2020", "--module", "ES2020", "--skipLibCheck"];
  args.push("--moduleResolution", "bundler", "--lib", "ES2020,DOM,WebWorker");
  try {
    execFileSync(process.execPath, [tsc, ...args], { encoding: "utf8", stdio: "pipe" });
    return "";
  } catch (e) {
    return `${e.stdout ?? ""}${e.stderr ?? ""}` || String(e);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("the package's types and the wasm module's generated declarations agree", () => {
  assert.ok(fs.existsSync(dts), `${dts} is missing: build the module first (scripts/build-web.sh)`);
  assert.ok(fs.existsSync(tsc), `${tsc} is missing: npm install in www/lib`);
  const { text, lineOf } = checkSource();
  const out = typeCheck(text);
  const failed = Object.keys(lineOf).filter((name) => out.includes(`contract.ts(${lineOf[name]},`));
  for (const [name, [pkg, gen]] of Object.entries(CHECKS)) {
    console.log(`${failed.includes(name) ? "DIFFERS" : "same"}: ${name}: ${pkg} and ${gen}`);
  }
  assert.equal(out, "", `the package and the module's declarations differ: ${failed.join(", ") || "see tsc"}\n${out}`);
});

test("every type the module declares for the boundary is checked here", () => {
  assert.ok(fs.existsSync(dts), `${dts} is missing: build the module first (scripts/build-web.sh)`);
  const declared = new Set([...fs.readFileSync(dts, "utf8").matchAll(/export (?:interface|type) (\w+)/g)].map((m) => m[1]));
  const checked = new Set(Object.values(CHECKS).map(([, gen]) => gen.slice(2)));
  // Types reached only through a checked one (fields' types) are compared with it.
  const nested = ["TextureReads", "F16Option", "CacheOption", "Steps", "ClassBlend", "ModelInfo", "Phase", "LinearBench", "KernelTiming"];
  nested.push("ForwardBench", "OpTiming", "ImageBench", "LinearPath", "LimitsMode", "SamplerKind", "CfgChannels", "Family");
  const unchecked = [...checked].filter((t) => !declared.has(t));
  assert.deepEqual(unchecked, [], `checked here but not declared by the module: ${unchecked.join(", ")}`);
  // wasm-bindgen's own: the module's loader.
  nested.push("InitInput", "InitOutput", "SyncInitInput");
  const missed = [...declared].filter((t) => !checked.has(t) && !nested.includes(t));
  assert.deepEqual(missed, [], `declared by the module but not checked here (add them to CHECKS or nested): ${missed.join(", ")}`);
});
