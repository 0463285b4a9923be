/// <reference lib="webworker" />
// The page's service worker: keeps the page itself (HTML, scripts, the wasm module) so that a visit without a network
// still opens it; the weights are kept by the package (Cache Storage, keyed by where they came from), and requests to
// other origins (the Hub) are not touched. Same-origin files are fetched from the network first and taken from this
// cache only when the network fails, so a new build is used as soon as it is online.
const sw = self as unknown as ServiceWorkerGlobalScope;
const APP_CACHE = "dit-wasm-page-v1";
/** The files of the build, listed by vite.config.ts when it writes this script. */
const APP_FILES: string[] = JSON.parse("__DIT_APP_FILES__");

sw.addEventListener("install", (e) => {
  e.waitUntil(
    caches
      .open(APP_CACHE)
      .then((c) => c.addAll(["./", ...APP_FILES]))
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
    if (resp.ok && resp.type === "basic") await cache.put(req, resp.clone());
    return resp;
  } catch (err) {
    const hit = await cache.match(req, { ignoreSearch: req.mode === "navigate" });
    if (hit) return hit;
    throw err;
  }
}

sw.addEventListener("fetch", (e) => {
  if (isPageFile(e.request)) e.respondWith(networkFirst(e.request));
});
