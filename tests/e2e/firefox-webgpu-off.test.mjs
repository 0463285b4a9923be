// Firefox with WebGPU switched off (its pref dom.webgpu.enabled): the Firefox cases (firefox.test.mjs) must fail, each
// with a message that says WebGPU is off, and none may pass or be skipped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";

test("with WebGPU switched off in Firefox, every Firefox case fails and says why", () => {
  // A run of its own (NODE_TEST_CONTEXT, set by this runner, would make it report to this one instead).
  const env = { ...process.env, DIT_FIREFOX_PREFS: JSON.stringify({ "dom.webgpu.enabled": false }) };
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ["--test", "--test-reporter=tap", path.join(import.meta.dirname, "firefox.test.mjs")], {
    env,
    encoding: "utf8",
    timeout: 300_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, "m").exec(out)?.[1]);
  console.log(out.split("\n").filter((l) => /^(not )?ok |^# (tests|pass|fail|skipped|todo) |WebGPU is switched off/.test(l)).join("\n"));
  assert.notEqual(r.status, 0, "the run fails");
  assert.ok(count("tests") >= 5, `every case ran (${count("tests")})`);
  assert.equal(count("pass"), 0, "none passed");
  assert.equal(count("skipped"), 0, "none was skipped");
  assert.equal(count("todo"), 0, "none is a todo");
  assert.equal(count("fail"), count("tests"), "every case failed");
  assert.match(out, /Firefox has no WebGPU here \(navigator\.gpu is missing\): WebGPU is switched off \(pref dom\.webgpu\.enabled\)/);
});
