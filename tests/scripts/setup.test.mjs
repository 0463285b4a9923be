// scripts/setup.sh as a fresh machine sees it. The script runs on a copy of the files it reads, with:
//   - wasm-bindgen and geckodriver absent from the PATH (every PATH folder that holds one is replaced by a copy
//     without it) and cargo installing into a throw-away root: the real `cargo install wasm-bindgen-cli` and `cargo
//     install geckodriver` run, and the installed binaries must be the version locked in Cargo.lock and the version
//     setup.sh names;
//   - stubs for apt-get and rustup, which record what they were asked to install, and for dpkg-query, which reports
//     what apt-get installed (so a second run must install nothing); `id -u` answers 1000 and `sudo` runs its
//     command, so the path of a user who is not root is the one taken;
//   - a new, empty npm cache: the real `npm ci` of the three package folders runs against the registry.
// A run with a failing apt-get must exit non-zero and name the step that failed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const repo = path.resolve(import.meta.dirname, "../..");
const lock = fs.readFileSync(path.join(repo, "Cargo.lock"), "utf8");
const lockedWasmBindgen = /name = "wasm-bindgen"\nversion = "([^"]+)"/.exec(lock)[1];
const geckodriverVersion = /^GECKODRIVER_VERSION=(\S+)$/m.exec(fs.readFileSync(path.join(repo, "scripts/setup.sh"), "utf8"))[1];
/** Tools the fresh machine must not have: setup.sh installs them. */
const hidden = (name) => name.startsWith("wasm-bindgen") || name === "geckodriver";

const STUBS = {
  // Debian: installed packages are those in $STUB_STATE/debs, which the apt-get stub writes.
  "dpkg-query": `#!/bin/sh
pkg=$(eval echo "\\$$#")
grep -qx "$pkg" "$STUB_STATE/debs" 2>/dev/null || { echo "dpkg-query: no packages found matching $pkg" >&2; exit 1; }
echo installed
`,
  "apt-get": `#!/bin/sh
echo "apt-get $*" >> "$STUB_STATE/apt.log"
[ -n "\${STUB_APT_FAIL:-}" ] && { echo "E: Unable to locate package (stub)" >&2; exit 100; }
[ "$1" = install ] || exit 0
for a in "$@"; do case "$a" in -*|install) ;; *) echo "$a" >> "$STUB_STATE/debs" ;; esac; done
`,
  sudo: `#!/bin/sh
echo "sudo $*" >> "$STUB_STATE/sudo.log"
exec "$@"
`,
  id: `#!/bin/sh
[ "$1" = -u ] && { echo 1000; exit 0; }
exec /usr/bin/id "$@"
`,
  rustup: `#!/bin/sh
case "$1 $2" in
  "target list") cat "$STUB_STATE/targets" 2>/dev/null; echo x86_64-unknown-linux-gnu ;;
  "target add") echo "rustup $*" >> "$STUB_STATE/rustup.log"; echo "$3" >> "$STUB_STATE/targets" ;;
  *) exec "$REAL_RUSTUP" "$@" ;;
esac
`,
};

function which(cmd) {
  for (const dir of process.env.PATH.split(":")) {
    const p = path.join(dir, cmd);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** A machine as fresh as this one can be made without breaking it. */
function freshMachine() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dit-wasm-setup-"));
  const copy = path.join(tmp, "repo");
  for (const f of ["scripts/setup.sh", "Cargo.lock", "package.json", "package-lock.json", "www/lib/package.json",
    "www/lib/package-lock.json", "www/demo/package.json", "www/demo/package-lock.json"]) {
    fs.mkdirSync(path.dirname(path.join(copy, f)), { recursive: true });
    fs.copyFileSync(path.join(repo, f), path.join(copy, f));
  }
  const stubs = path.join(tmp, "stubs");
  fs.mkdirSync(stubs);
  for (const [name, text] of Object.entries(STUBS)) fs.writeFileSync(path.join(stubs, name), text, { mode: 0o755 });
  const state = path.join(tmp, "state");
  fs.mkdirSync(state);
  const root = path.join(tmp, "cargo-root");
  // PATH: the stubs, the install root's bin (empty: as ~/.cargo/bin on a machine without wasm-bindgen), then the
  // machine's PATH with every wasm-bindgen* and geckodriver hidden.
  const dirs = [stubs, path.join(root, "bin")];
  process.env.PATH.split(":").forEach((dir, i) => {
    if (!dir || !fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return;
    const entries = fs.readdirSync(dir);
    if (!entries.some(hidden)) return dirs.push(dir);
    const filtered = path.join(tmp, `path-${i}`);
    fs.mkdirSync(filtered);
    for (const e of entries.filter((e) => !hidden(e))) {
      fs.symlinkSync(path.join(dir, e), path.join(filtered, e));
    }
    dirs.push(filtered);
  });
  const env = {
    ...process.env,
    PATH: dirs.join(":"),
    STUB_STATE: state,
    REAL_RUSTUP: which("rustup") ?? "rustup",
    CARGO_INSTALL_ROOT: root,
    // Where setup.sh keeps the builds of wasm-bindgen-cli and geckodriver in the repository: the installs still happen.
    CARGO_TARGET_DIR: path.join(repo, "target/tools"),
    npm_config_cache: path.join(tmp, "npm-cache"),
  };
  delete env.STUB_APT_FAIL;
  return { tmp, copy, state, root, env };
}

function runSetup(m, extraEnv = {}) {
  const r = spawnSync("bash", [path.join(m.copy, "scripts/setup.sh"), "--test"], {
    env: { ...m.env, ...extraEnv }, encoding: "utf8", timeout: 20 * 60_000,
  });
  console.log(`setup.sh exit ${r.status}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`);
  return r;
}

const read = (p) => (fs.existsSync(p) ? fs.readFileSync(p, "utf8") : "");

test("setup.sh on a fresh machine installs wasm-bindgen, geckodriver, Debian packages, the wasm target, npm packages", () => {
  const m = freshMachine();
  try {
    for (const tool of ["wasm-bindgen", "geckodriver"]) {
      const probe = spawnSync("bash", ["-c", `command -v ${tool}`], { env: m.env, encoding: "utf8" });
      assert.notEqual(probe.status, 0, `${tool} must be absent from the test's PATH, found ${probe.stdout}`);
    }

    const r = runSetup(m);
    assert.equal(r.status, 0, "setup.sh must exit 0 on a fresh machine");

    const installed = path.join(m.root, "bin/wasm-bindgen");
    assert.ok(fs.existsSync(installed), "wasm-bindgen installed into the install root");
    const v = spawnSync(installed, ["--version"], { encoding: "utf8" }).stdout.trim();
    assert.equal(v.split(" ")[1], lockedWasmBindgen, `installed ${v}, Cargo.lock has ${lockedWasmBindgen}`);
    const gecko = path.join(m.root, "bin/geckodriver");
    assert.ok(fs.existsSync(gecko), "geckodriver installed into the install root");
    const gv = spawnSync(gecko, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0];
    assert.equal(gv.split(" ")[1], geckodriverVersion, `installed ${gv}, setup.sh names ${geckodriverVersion}`);

    const apt = read(path.join(m.state, "apt.log"));
    assert.match(apt, /^apt-get update/m);
    assert.match(read(path.join(m.state, "sudo.log")), /^sudo env DEBIAN_FRONTEND=noninteractive apt-get install/m);
    const install = apt.split("\n").find((l) => l.startsWith("apt-get install"));
    assert.ok(install, `apt-get install was run: ${apt}`);
    for (const pkg of ["mesa-vulkan-drivers", "libvulkan1", "chromium", "chromium-driver", "firefox-esr", "shellcheck"]) {
      assert.ok(install.split(" ").includes(pkg), `apt-get install asked for ${pkg}: ${install}`);
    }
    assert.equal(read(path.join(m.state, "rustup.log")).trim(), "rustup target add wasm32-unknown-unknown");
    for (const dir of [".", "www/lib", "www/demo"]) {
      assert.ok(fs.existsSync(path.join(m.copy, dir, "node_modules/.package-lock.json")), `npm packages in ${dir}`);
    }
    assert.ok(fs.existsSync(path.join(m.copy, "node_modules/playwright-core/package.json")));
    assert.ok(fs.existsSync(path.join(m.copy, "node_modules/puppeteer-core/package.json")));
    assert.ok(fs.existsSync(path.join(m.copy, "www/demo/node_modules/vite/package.json")));
    assert.ok(fs.existsSync(path.join(m.copy, "www/lib/node_modules/typescript/package.json")));

    // A second run finds everything and installs nothing.
    fs.rmSync(path.join(m.state, "apt.log"));
    const again = runSetup(m);
    assert.equal(again.status, 0);
    assert.equal(again.stdout, "", "a second run installs nothing");
    assert.equal(read(path.join(m.state, "apt.log")), "");
  } finally {
    fs.rmSync(m.tmp, { recursive: true, force: true });
  }
});

test("setup.sh names the failing step and what to do, and exits non-zero", () => {
  const m = freshMachine();
  try {
    const r = runSetup(m, { STUB_APT_FAIL: "1" });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /setup: FAILED \(exit \d+\) while running apt-get update/);
    assert.match(r.stderr, /setup: what to do: /);
  } finally {
    fs.rmSync(m.tmp, { recursive: true, force: true });
  }
});
