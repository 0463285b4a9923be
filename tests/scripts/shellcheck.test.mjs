// Every shell script of the project is clean under shellcheck (installed by scripts/setup.sh --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const repo = path.resolve(import.meta.dirname, "../..");

test("shellcheck: scripts/*.sh and .ci/run", () => {
  const files = fs.readdirSync(path.join(repo, "scripts")).filter((f) => f.endsWith(".sh")).map((f) => `scripts/${f}`);
  files.push(".ci/run");
  const r = spawnSync("shellcheck", files, { cwd: repo, encoding: "utf8" });
  assert.equal(r.error, undefined, `shellcheck could not run (scripts/setup.sh --test installs it): ${r.error}`);
  console.log(`shellcheck ${files.join(" ")}: exit ${r.status}`);
  assert.equal(r.status, 0, `shellcheck found problems:\n${r.stdout}${r.stderr}`);
});
