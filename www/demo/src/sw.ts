/// <reference lib="webworker" />
// The page's service worker: keeps the page itself (HTML, scripts, the wasm module) so that a visit without a network
// still opens it; the weights are kept by the package (Cache Storage, keyed by where they came from), and requests to
// other origins (the Hub) are not touched. Same-origin files are fetched from the network first and taken from this
// cache only when the network fails, so a new build is used as soon as it is online.
//
// A file is kept under its URL alone: the server's `Vary` (Vite's server sends `Vary: Origin`, others
// `Vary: Accept-Encoding`) is dropped when it is stored and ignored when it is looked up. Otherwise a copy stored by
// `install` (a request without an `Origin` header) would never answer the page's module scripts (requests with one),
// and `Vary: *` could not be stored at all.
const sw = self as unknown as ServiceWorkerGlobalScope;
const APP_CACHE = "dit-wasm-page-v1";
/** The files of the build, listed by vite.config.ts when it writes this script. */
const APP_FILES: string[] = JSON.parse("__DIT_APP_FILES__");

/** `resp` as it is kept: the same status, body and headers, without `Vary`. */
function keepable(resp: Response): Response {
  if (!resp.headers.has("vary")) return resp;
  const headers = new Headers(resp.headers);
  headers.delete("vary");
  return new Response(resp.body, { status: resp.status, statusText: resp.statusText, headers });
}

/** Fetches the page's file `url` and keeps it; fails (and with it the install) when the server does not give it. */
async function keep(cache: Cache, url: string) {
  const resp = await fetch(url, { cache: "no-cache" });
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  await cache.put(url, keepable(resp));
}

sw.addEventListener("install", (e) => {
  e.waitUntil(
    caches
      .open(APP_CACHE)
      .then((c) => Promise.all(["./", ...APP_FILES].map((f) => keep(c, f))))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener("activate", (e) => e.waitUntil(sw.clients.claim()));

/** Whether a request is one of the page's own files (not weights, not another origin, not a part of a file). */
function isPageFile(req: Request): boolean {
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== sw.location.origin || req.headers.has("range")) return false;
  return !/\.safetensors$|\.index\.json$|\/__/.test(url.pathname);
}

async function networkFirst(req: Request): Promise<Response> {
  const cache = await caches.open(APP_CACHE);
  try {
    const resp = await fetch(req);
    if (resp.ok && resp.type === "basic") await cache.put(req.url, keepable(resp.clone()));
    return resp;
  } catch (err) {
    const hit = await cache.match(req.url, { ignoreSearch: req.mode === "navigate", ignoreVary: true });
    if (hit) return hit;
    throw err;
  }
}

sw.addEventListener("fetch", (e) => {
  if (isPageFile(e.request)) e.respondWith(networkFirst(e.request));
});
