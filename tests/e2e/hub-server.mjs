// A local stand-in for the Hugging Face Hub, for the tests: it behaves as the Hub does for downloads (the facts are in
// the README's `hf://` section), with no dependency beyond Node's standard library.
//
// Repos are folders `<root>/<owner>/<name>/...`. Each repo has two revisions that name the same files: `main` and a
// fixed 40-hex commit (`commitOf(repo)`); any other revision is 404 (`X-Error-Code: RevisionNotFound`).
//
// Hub origin (`url`):
//   GET|HEAD /<owner>/<name>/resolve/<rev>/<path>
//       large files (over `largeBytes`, or .bin/.pt/.ckpt/.safetensors: the Hub's LFS files) answer 302 to the CDN
//       origin with X-Repo-Commit, ETag and X-Linked-Etag (the file's sha256), X-Linked-Size; small files answer 302 to
//       the relative `/api/resolve-cache/models/<owner>/<name>/<commit>/<path>?etag=<git blob sha1>`.
//   GET|HEAD /api/resolve-cache/models/<owner>/<name>/<commit>/<path>   the small file's bytes (X-Repo-Commit, ETag)
//   GET /api/models/<owner>/<name>[/revision/<rev>][?blobs=true]   {id, sha, siblings: [{rfilename}], ...} (hf-hub,
//       huggingface.js); with blobs=true each sibling also has blobId, size and, for LFS files, lfs: {sha256, size}
//   GET /api/models/<owner>/<name>/tree/<rev>[/<path>]   [{type, path, size, oid, lfs?}] (huggingface.js listFiles)
// CDN origin (`cdnUrl`, another port, so it is cross-origin for a page):
//   GET|HEAD /repos/<owner>/<name>/<commit>/<path>   the bytes, with the CDN's CORS headers: Allow-Origin *, the
//       exposed headers below, and an Access-Control-Allow-Headers that does not list Range: a preflight asking for
//       `range` is refused (403 without Allow-Headers), so only CORS-safelisted single ranges work from a page.
// Ranges (both origins): one `bytes=N-M` or `bytes=N-` answers 206 with Content-Range; a suffix (`bytes=-N`) or
// multi-range request is refused with 416, as is a start past the end.
// Errors are the Hub's: JSON `{"error": "..."}` with an `X-Error-Code` header (RepoNotFound, RevisionNotFound,
// EntryNotFound, GatedRepo).
//
// Test controls on the Hub origin:
//   POST /__control  JSON, merged into the fault state:
//       gated: {"owner/name": {status?: 401|403, tokens?: ["hf_..."]}}  a request without one of `tokens` as a bearer
//              token is refused: with `status`, or else 401 without a token and 403 with another one
//       dropAfter: {"owner/name/path": N}   the next body of that file longer than N bytes is cut after N bytes
//              (the connection is destroyed), once; later requests succeed
//       ignoreRange: true | "resume" | ["owner/name/path", ...]   Range is ignored: 200 with the whole file (for
//              every request, for those whose range starts past byte 0, or for those files)
//       down: true       every request's connection is destroyed (the Hub is unreachable)
//       reset: true      clears every fault first
//   GET /__stats     {requests, bytes, files: {"owner/name/path": {requests, bytes}}, log: [{method, url, range,
//                    status, origin, auth}]}   bytes are body bytes written; DELETE /__stats resets
// Usage: node tests/e2e/hub-server.mjs --root DIR [--port P] [--cdn-port Q]  (prints {"url","cdnUrl"} on one line)
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";

const EXPOSE = "Accept-Ranges, Content-Range, Content-Type, Content-Disposition, ETag, X-Cache";
const HUB_EXPOSE =
  "X-Repo-Commit, X-Request-Id, X-Error-Code, X-Error-Message, X-Total-Count, ETag, Link, Accept-Ranges, Content-Range, X-Linked-Size, X-Linked-ETag";
const LFS_EXT = /\.(bin|pt|pth|ckpt|safetensors|msgpack|h5|onnx)$/;
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,95})$/;

/** The fixed commit of a repo: the same for every start of the server. */
export function commitOf(repo) {
  return crypto.createHash("sha1").update(`dit-wasm hub stand-in ${repo}`).digest("hex");
}

function listFiles(dir, prefix = "") {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name === ".git") continue;
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    const full = path.join(dir, e.name);
    const stat = fs.statSync(full);
    if (stat.isDirectory()) out.push(...listFiles(full, rel));
    else if (stat.isFile()) out.push(rel);
  }
  return out;
}

/**
 * Starts the stand-in. Returns {url, cdnUrl, root, commitOf, stats(), resetStats(), control(state), close()}.
 * `largeBytes`: files over it are LFS files (redirected to the CDN); `host` of both origins.
 */
export async function startHubServer({ root, port = 0, cdnPort = 0, host = "127.0.0.1", largeBytes = 64 * 1024 } = {}) {
  root = path.resolve(root);
  let faults = {};
  let stats;
  const resetStats = () => (stats = { requests: 0, bytes: 0, files: {}, log: [] });
  resetStats();
  const sha256s = new Map();
  const urls = {};

  function control(state) {
    if (state.reset) faults = {};
    const { reset: _, ...rest } = state;
    for (const [k, v] of Object.entries(rest)) {
      faults[k] = v && typeof v === "object" && !Array.isArray(v) ? { ...(faults[k] ?? {}), ...v } : v;
    }
    return faults;
  }

  /**
   * A file request of the Hub's origin: recorded, then answered with the Hub's error (no such repo, revision or file;
   * gated) and `null`, or the located file with its ETag for the caller to answer.
   */
  async function admit(req, res, owner, name, rev, rest) {
    const loc = locate(owner, name, rev, rest.join("/"));
    record(req, res, "hub", loc.file ? `${loc.repo}/${loc.file}` : null);
    const refused = loc.status ? loc : gate(req, loc.repo);
    if (refused) {
      error(res, refused, cors(req));
      return null;
    }
    return { ...loc, etag: await etagOf(loc) };
  }

  /** The repo file a request names, or an error {status, code, message}. */
  function locate(owner, name, rev, file) {
    const repo = `${owner}/${name}`;
    if (!NAME.test(owner) || !NAME.test(name) || owner.includes("..") || name.includes(".."))
      return { status: 404, code: "RepoNotFound", message: "Repository not found" };
    const dir = path.join(root, owner, name);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
      return { status: 404, code: "RepoNotFound", message: "Repository not found" };
    const commit = commitOf(repo);
    if (rev !== "main" && rev !== commit) return { status: 404, code: "RevisionNotFound", message: `Invalid rev id: ${rev}` };
    if (file === undefined) return { repo, dir, commit };
    const parts = file.split("/");
    if (!file || parts.some((p) => p === "" || p === "." || p === "..") || file.includes("\\"))
      return { status: 404, code: "EntryNotFound", message: "Entry not found" };
    const full = path.join(dir, ...parts);
    if (!full.startsWith(dir + path.sep) || !fs.existsSync(full) || !fs.statSync(full).isFile())
      return { status: 404, code: "EntryNotFound", message: "Entry not found" };
    const size = fs.statSync(full).size;
    return { repo, dir, commit, file, full, size, large: size > largeBytes || LFS_EXT.test(file) };
  }

  /** The gate's answer to a request for `repo`, or null when it may pass. */
  function gate(req, repo) {
    const g = faults.gated?.[repo];
    if (!g) return null;
    const token = req.headers.authorization?.match(/^Bearer (.+)$/)?.[1];
    if (token && (g.tokens ?? []).includes(token)) return null;
    const status = g.status ?? (token ? 403 : 401);
    const message =
      status === 401
        ? `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`
        : `Access to model ${repo} is restricted and you are not in the authorized list. Visit ${urls.hub}/${repo} to ask for access.`;
    return { status, code: "GatedRepo", message };
  }

  async function sha256Of(full) {
    const st = fs.statSync(full);
    const key = `${full}:${st.size}:${st.mtimeMs}`;
    if (!sha256s.has(key)) {
      sha256s.set(
        key,
        new Promise((resolve, reject) => {
          const h = crypto.createHash("sha256");
          fs.createReadStream(full).on("data", (d) => h.update(d)).on("end", () => resolve(h.digest("hex"))).on("error", reject);
        }),
      );
    }
    return sha256s.get(key);
  }

  function gitSha1(full) {
    const body = fs.readFileSync(full);
    return crypto.createHash("sha1").update(`blob ${body.length}\0`).update(body).digest("hex");
  }

  const etagOf = async (loc) => (loc.large ? sha256Of(loc.full) : gitSha1(loc.full));
  /** The git blob id the Hub lists: of the file, or for an LFS file, of its pointer file (never the 3 GB). */
  const blobIdOf = async (loc) => {
    if (!loc.large) return gitSha1(loc.full);
    const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${await sha256Of(loc.full)}\nsize ${loc.size}\n`;
    return crypto.createHash("sha1").update(`blob ${pointer.length}\0${pointer}`).digest("hex");
  };

  function record(req, res, origin, key) {
    stats.requests++;
    const entry = { method: req.method, url: req.url, range: req.headers.range ?? null, status: 0, origin, auth: !!req.headers.authorization };
    stats.log.push(entry);
    res.on("finish", () => (entry.status = res.statusCode));
    res.on("close", () => (entry.status ||= res.statusCode));
    if (key) {
      const f = (stats.files[key] ??= { requests: 0, bytes: 0 });
      f.requests++;
    }
  }

  function countBytes(key, n) {
    stats.bytes += n;
    if (key) stats.files[key].bytes += n;
  }

  function error(res, { status, code, message }, extra = {}) {
    const body = JSON.stringify({ error: message });
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "x-error-code": code,
      "x-error-message": message,
      ...extra,
    });
    res.end(body);
  }

  /** Sends the file's bytes (whole or one range) with `headers`, applying the faults. */
  function sendFile(req, res, loc, headers) {
    const key = `${loc.repo}/${loc.file}`;
    const size = loc.size;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    const resume = /^bytes=[1-9]/.test(range ?? "");
    const ignore =
      faults.ignoreRange === true ||
      (faults.ignoreRange === "resume" && resume) ||
      (Array.isArray(faults.ignoreRange) && faults.ignoreRange.includes(key));
    if (range && !ignore) {
      const m = range.match(/^bytes=(\d+)-(\d*)$/);
      if (!m || (m[2] !== "" && Number(m[2]) < Number(m[1])) || Number(m[1]) >= size) {
        res.writeHead(416, { ...headers, "content-range": `bytes */${size}`, "content-length": 0 });
        return res.end();
      }
      start = Number(m[1]);
      end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
      status = 206;
      headers = { ...headers, "content-range": `bytes ${start}-${end}/${size}` };
    }
    const length = size === 0 ? 0 : end - start + 1;
    res.writeHead(status, { ...headers, "accept-ranges": "bytes", "content-length": length });
    if (req.method === "HEAD" || length === 0) return res.end();
    let limit = Infinity;
    if (faults.dropAfter && key in faults.dropAfter && length > faults.dropAfter[key]) {
      limit = faults.dropAfter[key];
      delete faults.dropAfter[key];
    }
    const stream = fs.createReadStream(loc.full, { start, end });
    let sent = 0;
    stream.on("data", (chunk) => {
      if (sent + chunk.length > limit) {
        const part = chunk.subarray(0, Math.max(0, limit - sent));
        stream.destroy();
        const cut = () => res.destroy();
        countBytes(key, part.length);
        return part.length ? res.write(part, () => setTimeout(cut, 20)) : cut();
      }
      sent += chunk.length;
      countBytes(key, chunk.length);
      if (!res.write(chunk)) {
        stream.pause();
        res.once("drain", () => stream.resume());
      }
    });
    stream.on("end", () => res.end());
    stream.on("error", () => res.destroy());
    res.on("close", () => stream.destroy());
  }

  const cors = (req) => ({ "access-control-allow-origin": "*", "access-control-expose-headers": HUB_EXPOSE, vary: "Origin" });

  async function hub(req, res) {
    const url = new URL(req.url, urls.hub);
    const p = url.pathname;
    if (p === "/__control" && req.method === "POST") {
      let body = "";
      for await (const c of req) body += c;
      let state;
      try {
        state = JSON.parse(body || "{}");
      } catch {
        return error(res, { status: 400, code: "BadRequest", message: "control body is not JSON" });
      }
      const out = JSON.stringify(control(state));
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(out);
    }
    if (p === "/__stats") {
      if (req.method === "DELETE") resetStats();
      res.writeHead(200, { "content-type": "application/json", "access-control-allow-origin": "*" });
      return res.end(JSON.stringify(stats));
    }
    if (faults.down) return req.socket.destroy();
    const seg = p.split("/").slice(1).map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return "\0";
      }
    });
    if (req.method === "OPTIONS") {
      // The Hub's own preflight: Authorization may be sent, Range may not.
      res.writeHead(204, { ...cors(req), "access-control-allow-methods": "GET, HEAD", "access-control-allow-headers": "authorization, content-type" });
      return res.end();
    }
    if (req.method !== "GET" && req.method !== "HEAD") return error(res, { status: 405, code: "MethodNotAllowed", message: "method not allowed" }, cors(req));

    // /<owner>/<name>/resolve/<rev>/<path...>
    if (seg.length >= 5 && seg[2] === "resolve") {
      const [owner, name, , rev, ...rest] = seg;
      const loc = await admit(req, res, owner, name, rev, rest);
      if (!loc) return;
      const etag = loc.etag;
      const headers = { ...cors(req), "x-repo-commit": loc.commit, etag: `"${etag}"`, "content-length": 0 };
      const file = loc.file.split("/").map(encodeURIComponent).join("/");
      if (loc.large) {
        Object.assign(headers, { "x-linked-etag": `"${etag}"`, "x-linked-size": loc.size, location: `${urls.cdn}/repos/${owner}/${name}/${loc.commit}/${file}` });
      } else {
        headers.location = `/api/resolve-cache/models/${owner}/${name}/${loc.commit}/${file}?etag=%22${etag}%22`;
      }
      res.writeHead(302, headers);
      return res.end();
    }
    // /api/resolve-cache/models/<owner>/<name>/<commit>/<path...>
    if (seg[0] === "api" && seg[1] === "resolve-cache" && seg[2] === "models" && seg.length >= 7) {
      const [, , , owner, name, commit, ...rest] = seg;
      const loc = await admit(req, res, owner, name, commit, rest);
      if (!loc) return;
      const etag = loc.etag;
      const type = loc.file.endsWith(".json") ? "application/json" : "application/octet-stream";
      return sendFile(req, res, loc, { ...cors(req), "x-repo-commit": loc.commit, etag: `"${etag}"`, "content-type": type });
    }
    // /api/models/<owner>/<name>[/revision/<rev>] and /api/models/<owner>/<name>/tree/<rev>[/<path>]
    if (seg[0] === "api" && seg[1] === "models" && seg.length >= 4) {
      const [, , owner, name, kind, rev = "main", ...rest] = seg;
      record(req, res, "hub", null);
      if (kind !== undefined && kind !== "revision" && kind !== "tree") return error(res, { status: 404, code: "NotFound", message: "Not found" }, cors(req));
      const loc = locate(owner, name, rev);
      if (loc.status) return error(res, loc, cors(req));
      const refused = gate(req, loc.repo);
      if (refused && kind === "tree") return error(res, refused, cors(req));
      const files = listFiles(loc.dir);
      let body;
      if (kind === "tree") {
        const under = rest.join("/");
        const entries = [];
        for (const f of files) {
          if (under && !f.startsWith(`${under}/`)) continue;
          const l = locate(owner, name, rev, f);
          const e = { type: "file", oid: await blobIdOf(l), size: l.size, path: f };
          if (l.large) e.lfs = { oid: await sha256Of(l.full), size: l.size, pointerSize: 134 };
          entries.push(e);
        }
        body = entries;
      } else {
        const g = faults.gated?.[loc.repo];
        const siblings = [];
        for (const rfilename of files) {
          if (url.searchParams.get("blobs") !== "true") {
            siblings.push({ rfilename });
            continue;
          }
          const l = locate(owner, name, rev, rfilename);
          const s = { rfilename, blobId: await blobIdOf(l), size: l.size };
          if (l.large) s.lfs = { sha256: await sha256Of(l.full), size: l.size, pointerSize: 134 };
          siblings.push(s);
        }
        body = { _id: loc.commit.slice(0, 24), id: loc.repo, modelId: loc.repo, sha: loc.commit, private: false, gated: g ? "manual" : false, disabled: false, tags: [], library_name: "diffusers", siblings };
      }
      const text = JSON.stringify(body);
      res.writeHead(200, { ...cors(req), "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
      return res.end(req.method === "HEAD" ? undefined : text);
    }
    record(req, res, "hub", null);
    return error(res, { status: 404, code: "NotFound", message: "Not found" }, cors(req));
  }

  async function cdn(req, res) {
    if (faults.down) return req.socket.destroy();
    const base = { "access-control-allow-origin": "*", "access-control-expose-headers": EXPOSE };
    if (req.method === "OPTIONS") {
      // The CDN's preflight: Range is not an allowed header, so a page's request that needs a preflight fails.
      record(req, res, "cdn", null);
      const asked = (req.headers["access-control-request-headers"] ?? "").toLowerCase();
      if (asked.split(",").some((h) => h.trim() && h.trim() !== "content-type")) {
        res.writeHead(403, { "content-type": "text/plain" });
        return res.end("preflight refused");
      }
      res.writeHead(204, { ...base, "access-control-allow-methods": "GET, HEAD", "access-control-allow-headers": "content-type" });
      return res.end();
    }
    const seg = new URL(req.url, urls.cdn).pathname.split("/").slice(1).map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return "\0";
      }
    });
    if (seg[0] !== "repos" || seg.length < 5 || (req.method !== "GET" && req.method !== "HEAD")) {
      record(req, res, "cdn", null);
      res.writeHead(404, { ...base, "content-type": "text/plain" });
      return res.end("not found");
    }
    const [, owner, name, commit, ...rest] = seg;
    const loc = locate(owner, name, commit, rest.join("/"));
    record(req, res, "cdn", loc.file ? `${loc.repo}/${loc.file}` : null);
    if (loc.status) {
      res.writeHead(404, { ...base, "content-type": "text/plain" });
      return res.end("not found");
    }
    const etag = await sha256Of(loc.full);
    const disposition = `inline; filename*=UTF-8''${encodeURIComponent(path.basename(loc.file))}; filename="${path.basename(loc.file)}";`;
    sendFile(req, res, loc, { ...base, etag: `"${etag}"`, "content-type": "application/octet-stream", "content-disposition": disposition, "x-cache": "Miss from cloudfront" });
  }

  const wrap = (fn) => (req, res) =>
    fn(req, res).catch((e) => {
      if (!res.headersSent) error(res, { status: 500, code: "InternalError", message: String(e?.message ?? e) });
      else res.destroy();
    });
  const hubServer = http.createServer(wrap(hub));
  const cdnServer = http.createServer(wrap(cdn));
  const listen = (s, p) => new Promise((resolve, reject) => s.once("error", reject).listen(p, host, () => resolve(s.address().port)));
  const hubPort = await listen(hubServer, port);
  const cdnPortReal = await listen(cdnServer, cdnPort);
  urls.hub = `http://${host}:${hubPort}`;
  urls.cdn = `http://${host}:${cdnPortReal}`;
  return {
    url: urls.hub,
    cdnUrl: urls.cdn,
    root,
    commitOf,
    stats: () => structuredClone(stats),
    resetStats,
    control,
    close: () =>
      Promise.all(
        [hubServer, cdnServer].map(
          (s) =>
            new Promise((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      ),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : fallback;
  };
  const root = arg("--root");
  if (!root || !fs.existsSync(root)) {
    console.error("usage: node tests/e2e/hub-server.mjs --root DIR [--port P] [--cdn-port Q] [--host H]: DIR must exist");
    process.exit(2);
  }
  const s = await startHubServer({ root, port: Number(arg("--port", 0)), cdnPort: Number(arg("--cdn-port", 0)), host: arg("--host", "127.0.0.1") });
  console.log(JSON.stringify({ url: s.url, cdnUrl: s.cdnUrl }));
  const stop = () => s.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
