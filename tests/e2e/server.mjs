// A static file server for the end-to-end tests, with injected faults: a path /faulty/<mode>/<file> serves <file>
// with a fault, where mode is
//   flip     one byte of each .safetensors shard flipped (an integrity failure)
//   404      not found
//   500once  the first request of each file fails with 500, later ones succeed (a retry must recover)
//   droponce the first request of each file is cut after half the body (a retry must recover)
//   norange  Range headers are ignored: 200 with the whole file, as some servers do
//   stall    headers and half the body are sent, then nothing more (the connection stays open): a timeout must end it
//   slowonce the first request of each file is sent in 64 KiB pieces 100 ms apart (a download to interrupt), later ones
//            at once
// Everything else is served as is, with single-range `Range: bytes=a-b` requests answered 206 (Content-Range).
// Requests are counted by path, for the tests to inspect. `headers` are added to every answer (a static host's `Vary`,
// say); `offline(true)` makes the server drop every request unanswered (the connection closed, as without a network)
// until `offline(false)`.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".wasm": "application/wasm", ".json": "application/json", ".png": "image/png", ".svg": "image/svg+xml" };

export function serve(root, port = 0, { headers = {} } = {}) {
  const counts = new Map();
  const seen = new Set();
  let down = false;
  const server = http.createServer((req, res) => {
    if (down) return req.socket.destroy();
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    let url = decodeURIComponent(new URL(req.url, "http://x").pathname);
    counts.set(url, (counts.get(url) ?? 0) + 1);
    let mode = null;
    const m = url.match(/^\/faulty\/([a-z0-9]+)(\/.*)$/);
    if (m) [, mode, url] = m;
    let file = path.join(root, url);
    if (!file.startsWith(root)) return res.writeHead(403).end();
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
    if (!fs.existsSync(file) || mode === "404") return res.writeHead(404).end("not found");
    let body = fs.readFileSync(file);
    const key = `${req.url} ${req.headers.range ?? ""}`;
    const first = !seen.has(key);
    seen.add(key);
    if (mode === "500once" && first) return res.writeHead(500).end("server error");
    if (mode === "flip" && file.endsWith(".safetensors")) {
      body = Buffer.from(body);
      body[body.length - 1] ^= 0x40;
    }
    const type = TYPES[path.extname(file)] ?? "application/octet-stream";
    const range = req.headers.range?.match(/^bytes=(\d+)-(\d+)$/);
    if (range && mode !== "norange") {
      const [a, b] = [Number(range[1]), Math.min(Number(range[2]), body.length - 1)];
      if (a >= body.length || a > b) return res.writeHead(416, { "content-range": `bytes */${body.length}` }).end();
      const part = body.subarray(a, b + 1);
      res.writeHead(206, { "content-type": type, "content-length": part.length, "content-range": `bytes ${a}-${b}/${body.length}`, "accept-ranges": "bytes" });
      return res.end(part);
    }
    res.writeHead(200, { "content-type": type, "content-length": body.length });
    if (mode === "stall") {
      res.write(body.subarray(0, body.length >> 1));
      return setTimeout(() => res.destroy(), 120_000).unref();
    }
    if (mode === "slowonce" && first) {
      let at = 0;
      const next = () => {
        if (res.destroyed) return;
        if (at >= body.length) return res.end();
        res.write(body.subarray(at, (at += 65536)));
        setTimeout(next, 100);
      };
      return next();
    }
    if (mode === "droponce" && first) {
      res.write(body.subarray(0, body.length >> 1));
      return setTimeout(() => res.destroy(), 50);
    }
    res.end(body);
  });
  return new Promise((resolve) =>
    server.listen(port, "127.0.0.1", () => resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      counts,
      offline: (on) => {
        down = on;
        if (on) server.closeAllConnections();
      },
      close: () => {
        server.closeAllConnections();
        server.close();
      },
    })),
  );
}

/** A static server of `routes` (URL prefix -> folder) on 127.0.0.1; `headers` go on every answer. */
export function serveRoutes(routes, headers = {}) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, "http://x").pathname);
    requests.push({ url, origin: req.headers.origin ?? null });
    const prefix = Object.keys(routes).find((p) => url.startsWith(p));
    const file = prefix && path.join(routes[prefix], url.slice(prefix.length) || "index.html");
    if (!file || !file.startsWith(routes[prefix]) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      return res.writeHead(404, headers).end("not found");
    }
    const body = fs.readFileSync(file);
    res.writeHead(200, { ...headers, "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
    res.end(body);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${server.address().port}`, requests, close: () => { server.closeAllConnections(); server.close(); } }),
    ),
  );
}

/**
 * The npm package as a CDN serves it, with the demo model (`cdn`: www/lib's dist/ and pkg/ under /dit-wasm/, models/
 * under /models/, `Access-Control-Allow-Origin: *`), and a plain page on another origin (`site`, a page written into
 * `dir`) that imports it by URL with `<script type="module">` as `window.dit`.
 */
export async function packageOnAnotherOrigin(repo, dir) {
  const cdn = await serveRoutes(
    { "/dit-wasm/dist/": path.join(repo, "www/lib/dist"), "/dit-wasm/pkg/": path.join(repo, "www/lib/pkg"), "/models/": path.join(repo, "models") },
    { "access-control-allow-origin": "*" },
  );
  fs.writeFileSync(
    path.join(dir, "index.html"),
    `<!doctype html><meta charset="utf-8"><title>dit-wasm from another origin</title>
<script type="module">
  import * as dit from "${cdn.url}/dit-wasm/dist/index.js";
  window.dit = dit;
</script>`,
  );
  const site = await serveRoutes({ "/": dir });
  return { cdn, site };
}
