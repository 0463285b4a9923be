// The Hub stand-in (hub-server.mjs) behaves as the Hub does for downloads: run with `node --test`.
// Node's fetch is used with `redirect: "manual"` to see the redirects themselves; the last test checks in Chromium
// (when playwright-core and a Chromium are installed) that a page can read a single range cross-origin and that a
// request needing a preflight fails.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startHubServer, commitOf } from "./hub-server.mjs";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const tiny = path.join(repoRoot, "tests/fixtures/hub/DiT-tiny");

let root, hub, big, small;
before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "hub-root-"));
  const repo = path.join(root, "acme/dit-test");
  fs.mkdirSync(path.join(repo, "transformer"), { recursive: true });
  small = Buffer.from(JSON.stringify({ _class_name: "Transformer2DModel", num_layers: 2 }));
  big = crypto.randomBytes(200_000);
  fs.writeFileSync(path.join(repo, "model_index.json"), "{}");
  fs.writeFileSync(path.join(repo, "transformer/config.json"), small);
  fs.writeFileSync(path.join(repo, "transformer/diffusion_pytorch_model.bin"), big);
  if (fs.existsSync(tiny)) {
    fs.mkdirSync(path.join(root, "facebook"));
    fs.symlinkSync(tiny, path.join(root, "facebook/DiT-tiny"));
  }
  hub = await startHubServer({ root });
});
after(async () => {
  await hub?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const get = (url, headers = {}, method = "GET") => fetch(url, { headers, method, redirect: "manual" });
const commit = () => commitOf("acme/dit-test");
const gitSha1 = (b) => crypto.createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
const sha256 = (b) => crypto.createHash("sha256").update(b).digest("hex");

test("a small file redirects to the relative resolve-cache URL, which serves it with the commit and git etag", async () => {
  for (const rev of ["main", commit()]) {
    const r = await get(`${hub.url}/acme/dit-test/resolve/${rev}/transformer/config.json`);
    assert.equal(r.status, 302);
    const loc = r.headers.get("location");
    assert.match(loc, new RegExp(`^/api/resolve-cache/models/acme/dit-test/${commit()}/transformer/config.json\\?etag=`));
    assert.equal(r.headers.get("x-repo-commit"), commit());
    assert.equal(r.headers.get("etag"), `"${gitSha1(small)}"`);
    const f = await get(new URL(loc, hub.url));
    assert.equal(f.status, 200);
    assert.equal(f.headers.get("access-control-allow-origin"), "*");
    assert.equal(f.headers.get("x-repo-commit"), commit());
    assert.deepEqual(Buffer.from(await f.arrayBuffer()), small);
  }
});

test("a large file redirects to the CDN on another origin, which serves single ranges with the CDN's CORS headers", async () => {
  const r = await get(`${hub.url}/acme/dit-test/resolve/main/transformer/diffusion_pytorch_model.bin`, { range: "bytes=0-0" });
  assert.equal(r.status, 302);
  const loc = r.headers.get("location");
  assert.ok(loc.startsWith(hub.cdnUrl), loc);
  assert.notEqual(new URL(loc).origin, new URL(hub.url).origin);
  assert.equal(r.headers.get("x-linked-size"), String(big.length));
  assert.equal(r.headers.get("x-linked-etag"), `"${sha256(big)}"`);
  assert.equal(r.headers.get("x-repo-commit"), commit());

  const first = await get(loc, { range: "bytes=0-0" });
  assert.equal(first.status, 206);
  assert.equal(first.headers.get("content-range"), `bytes 0-0/${big.length}`);
  assert.equal(first.headers.get("access-control-allow-origin"), "*");
  assert.equal(
    first.headers.get("access-control-expose-headers"),
    "Accept-Ranges, Content-Range, Content-Type, Content-Disposition, ETag, X-Cache",
  );
  assert.deepEqual(Buffer.from(await first.arrayBuffer()), big.subarray(0, 1));
  const mid = await get(loc, { range: "bytes=1000-1999" });
  assert.equal(mid.status, 206);
  assert.deepEqual(Buffer.from(await mid.arrayBuffer()), big.subarray(1000, 2000));
  const tail = await get(loc, { range: "bytes=150000-" });
  assert.equal(tail.headers.get("content-range"), `bytes 150000-${big.length - 1}/${big.length}`);
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), big.subarray(150000));
  const whole = await get(loc);
  assert.equal(whole.status, 200);
  assert.deepEqual(Buffer.from(await whole.arrayBuffer()), big);
  for (const range of ["bytes=-100", "bytes=0-9,20-29", `bytes=${big.length}-`, "bytes=10-5", "items=0-1"]) {
    const bad = await get(loc, { range });
    assert.equal(bad.status, 416, range);
    assert.equal(bad.headers.get("content-range"), `bytes */${big.length}`);
  }
});

test("the CDN refuses a preflight that asks for Range or another header; a plain one passes", async () => {
  const loc = `${hub.cdnUrl}/repos/acme/dit-test/${commit()}/transformer/diffusion_pytorch_model.bin`;
  const pre = (headers) =>
    fetch(loc, { method: "OPTIONS", headers: { origin: "http://page.test", "access-control-request-method": "GET", ...headers } });
  for (const asked of ["range", "authorization", "x-custom"]) {
    const r = await pre({ "access-control-request-headers": asked });
    assert.notEqual(r.headers.get("access-control-allow-headers")?.includes(asked), true, asked);
    assert.equal(r.headers.get("access-control-allow-origin"), null, asked);
  }
  const ok = await pre({});
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get("access-control-allow-origin"), "*");
  assert.ok(!/range/i.test(ok.headers.get("access-control-allow-headers")));
});

test("unknown revisions, repos and files are 404 with the Hub's JSON error; paths cannot escape the repo", async () => {
  const cases = [
    ["acme/dit-test/resolve/dev/model_index.json", "RevisionNotFound"],
    [`acme/dit-test/resolve/${"0".repeat(40)}/model_index.json`, "RevisionNotFound"],
    ["acme/nothing/resolve/main/model_index.json", "RepoNotFound"],
    ["acme/dit-test/resolve/main/vae/config.json", "EntryNotFound"],
    ["acme/dit-test/resolve/main/transformer/..%2F..%2F..%2Fetc%2Fpasswd", "EntryNotFound"],
    ["acme/..%2Facme%2Fdit-test/resolve/main/model_index.json", "RepoNotFound"],
  ];
  for (const [p, code] of cases) {
    const r = await get(`${hub.url}/${p}`);
    assert.equal(r.status, 404, p);
    assert.equal(r.headers.get("x-error-code"), code, p);
    assert.equal(typeof (await r.json()).error, "string", p);
  }
});

test("the model info lists the files at the commit; the tree gives sizes and LFS sha256", async () => {
  for (const p of ["api/models/acme/dit-test", "api/models/acme/dit-test/revision/main", `api/models/acme/dit-test/revision/${commit()}`]) {
    const info = await (await get(`${hub.url}/${p}`)).json();
    assert.equal(info.sha, commit());
    assert.equal(info.id, "acme/dit-test");
    assert.deepEqual(info.siblings.map((s) => s.rfilename), ["model_index.json", "transformer/config.json", "transformer/diffusion_pytorch_model.bin"]);
  }
  assert.equal((await get(`${hub.url}/api/models/acme/dit-test/revision/dev`)).status, 404);
  const blobs = await (await get(`${hub.url}/api/models/acme/dit-test?blobs=true`)).json();
  assert.deepEqual(blobs.siblings[1], { rfilename: "transformer/config.json", blobId: gitSha1(small), size: small.length });
  assert.deepEqual(blobs.siblings[2].lfs, { sha256: sha256(big), size: big.length, pointerSize: 134 });
  const tree = await (await get(`${hub.url}/api/models/acme/dit-test/tree/main/transformer`)).json();
  assert.deepEqual(tree.map((e) => [e.path, e.size, e.lfs?.oid ?? null]), [
    ["transformer/config.json", small.length, null],
    ["transformer/diffusion_pytorch_model.bin", big.length, sha256(big)],
  ]);
});

test("a gated repo answers 401 without a token, 403 with another one, and serves an accepted token", async () => {
  hub.control({ gated: { "acme/dit-test": { tokens: ["hf_good"] } } });
  try {
    const url = `${hub.url}/acme/dit-test/resolve/main/transformer/config.json`;
    const anon = await get(url);
    assert.equal(anon.status, 401);
    assert.equal(anon.headers.get("x-error-code"), "GatedRepo");
    assert.match((await anon.json()).error, /^Access to model acme\/dit-test is restricted/);
    const wrong = await get(url, { authorization: "Bearer hf_bad" });
    assert.equal(wrong.status, 403);
    assert.match((await wrong.json()).error, /not in the authorized list/);
    assert.equal((await get(url, { authorization: "Bearer hf_good" })).status, 302);
  } finally {
    hub.control({ reset: true });
  }
  assert.equal((await get(`${hub.url}/acme/dit-test/resolve/main/transformer/config.json`)).status, 302);
});

test("faults: a connection dropped once after N bytes, Range ignored, the Hub down; set over POST /__control", async () => {
  const key = "acme/dit-test/transformer/diffusion_pytorch_model.bin";
  const loc = `${hub.cdnUrl}/repos/acme/dit-test/${commit()}/transformer/diffusion_pytorch_model.bin`;
  const post = (body) => fetch(`${hub.url}/__control`, { method: "POST", body: JSON.stringify(body) });
  assert.equal((await post({ dropAfter: { [key]: 5000 } })).status, 200);
  const cut = await get(loc);
  assert.equal(cut.status, 200);
  await assert.rejects(cut.arrayBuffer());
  const again = await get(loc, { range: "bytes=5000-" });
  assert.deepEqual(Buffer.from(await again.arrayBuffer()), big.subarray(5000));

  await post({ ignoreRange: [key] });
  const ignored = await get(loc, { range: "bytes=10-19" });
  assert.equal(ignored.status, 200);
  assert.equal((await ignored.arrayBuffer()).byteLength, big.length);
  await post({ down: true });
  await assert.rejects(fetch(`${hub.url}/acme/dit-test/resolve/main/model_index.json`));
  await assert.rejects(fetch(loc));
  await post({ reset: true });
  assert.equal((await get(loc, { range: "bytes=10-19" })).status, 206);
});

test("stats count requests and body bytes per repo file; DELETE /__stats resets them", async () => {
  await fetch(`${hub.url}/__stats`, { method: "DELETE" });
  const key = "acme/dit-test/transformer/diffusion_pytorch_model.bin";
  const r = await fetch(`${hub.url}/acme/dit-test/resolve/main/transformer/diffusion_pytorch_model.bin`, { headers: { range: "bytes=100-199" } });
  assert.equal(r.status, 206);
  assert.equal((await r.arrayBuffer()).byteLength, 100);
  await (await fetch(`${hub.url}/acme/dit-test/resolve/main/model_index.json`)).arrayBuffer();
  const s = await (await fetch(`${hub.url}/__stats`)).json();
  assert.deepEqual(s.files[key], { requests: 2, bytes: 100 });
  assert.deepEqual(s.files["acme/dit-test/model_index.json"], { requests: 2, bytes: 2 });
  assert.equal(s.requests, 4);
  assert.equal(s.bytes, 102);
  assert.deepEqual(s.log.map((e) => [e.origin, e.status]), [["hub", 302], ["cdn", 206], ["hub", 302], ["hub", 200]]);
  const cleared = await (await fetch(`${hub.url}/__stats`, { method: "DELETE" })).json();
  assert.deepEqual(cleared, { requests: 0, bytes: 0, files: {}, log: [] });
});

test("a file over 2 GiB is listed and served by ranges without being read whole", async () => {
  const dir = path.join(root, "acme/huge");
  fs.mkdirSync(dir, { recursive: true });
  const size = 2.5 * 2 ** 30;
  // Sparse: no disk space, but every byte is read to hash it.
  fs.writeFileSync(path.join(dir, "weights.bin"), "");
  fs.truncateSync(path.join(dir, "weights.bin"), size);
  const info = await (await get(`${hub.url}/api/models/acme/huge?blobs=true`)).json();
  assert.equal(info.siblings[0].size, size);
  assert.match(info.siblings[0].lfs.sha256, /^[0-9a-f]{64}$/);
  const r = await fetch(`${hub.url}/acme/huge/resolve/main/weights.bin`, { headers: { range: `bytes=${size - 10}-` } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get("content-range"), `bytes ${size - 10}-${size - 1}/${size}`);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), Buffer.alloc(10));
  fs.rmSync(dir, { recursive: true });
});

test("the command line starts it and prints both origins as JSON on one line", async () => {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, "hub-server.mjs"), "--root", root], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const line = await new Promise((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolve(out.split("\n")[0]);
      });
      child.on("exit", (code) => reject(new Error(`exited with ${code}`)));
    });
    const { url, cdnUrl } = JSON.parse(line);
    assert.match(cdnUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const info = await (await fetch(`${url}/api/models/acme/dit-test`)).json();
    assert.equal(info.sha, commit());
  } finally {
    child.kill();
  }
});

test("the official-layout fixture repo is served when present", { skip: !fs.existsSync(tiny) && "tests/fixtures/hub/DiT-tiny not here yet" }, async () => {
  const info = await (await get(`${hub.url}/api/models/facebook/DiT-tiny`)).json();
  assert.ok(info.siblings.some((s) => s.rfilename === "transformer/diffusion_pytorch_model.bin"));
  const r = await fetch(`${hub.url}/facebook/DiT-tiny/resolve/main/transformer/diffusion_pytorch_model.bin`, { headers: { range: "bytes=0-3" } });
  assert.equal(r.status, 206);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), Buffer.from("PK\x03\x04", "latin1"));
});

test("in Chromium, a page reads a single range cross-origin and a request needing a preflight fails", async (t) => {
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch {
    return t.skip("playwright-core is not installed (npm ci)");
  }
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!fs.existsSync(executablePath)) return t.skip(`no Chromium at ${executablePath}`);
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-quic"] });
  try {
    const page = await browser.newPage();
    await page.goto(`${hub.url}/__stats`);
    const result = await page.evaluate(async (resolve) => {
      const read = async (range) => {
        try {
          const r = await fetch(resolve, { headers: range ? { range } : {}, referrerPolicy: "no-referrer" });
          return { status: r.status, contentRange: r.headers.get("content-range"), length: (await r.arrayBuffer()).byteLength };
        } catch (e) {
          return { failed: e.name };
        }
      };
      return { single: await read("bytes=0-0"), open: await read("bytes=199990-"), suffix: await read("bytes=-10"), multi: await read("bytes=0-1,4-5") };
    }, `${hub.url}/acme/dit-test/resolve/main/transformer/diffusion_pytorch_model.bin`);
    assert.deepEqual(result.single, { status: 206, contentRange: `bytes 0-0/${big.length}`, length: 1 });
    assert.deepEqual(result.open, { status: 206, contentRange: `bytes 199990-199999/${big.length}`, length: 10 });
    assert.deepEqual(result.suffix, { failed: "TypeError" });
    assert.deepEqual(result.multi, { failed: "TypeError" });
  } finally {
    await browser.close();
  }
});
