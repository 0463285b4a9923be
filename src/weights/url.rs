//! Model files over HTTP in the browser (window or worker): byte-level progress, retries with backoff, the sha256 of
//! every shard checked before use, and Cache Storage so that a second visit downloads no shard. A cached shard that
//! fails its check is deleted and fetched again.

#![cfg(target_arch = "wasm32")]

use super::index::{ModelIndex, INDEX_FILE};
use super::load::{verify_shard, Source};
use crate::error::{Error, Result};
use js_sys::{Object, Reflect, Uint8Array};
use std::cell::Cell;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Name of the Cache Storage bucket holding shards.
pub const CACHE_NAME: &str = "dit-wasm-weights-v1";
/// Attempts per file before giving up (server errors and network failures; a 4xx fails at once).
const ATTEMPTS: u32 = 4;

/// A base URL of a model directory.
pub struct UrlSource {
    base: String,
    use_cache: bool,
    timeout_ms: u32,
    progress: Option<js_sys::Function>,
    /// Bytes of shards obtained so far and in all (for progress).
    loaded: Cell<f64>,
    total: Cell<f64>,
    /// The status of the last answer that no retry changes (404, 401, 403), for a typed error.
    refused: Cell<Option<u16>>,
}

fn js_err(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        if let Ok(f) = Reflect::get(&global, &"setTimeout".into()) {
            if let Some(f) = f.dyn_ref::<js_sys::Function>() {
                let _ = f.call2(&global, &resolve, &JsValue::from(ms));
            }
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Default wait for a response or for the next bytes of a body before a request counts as stalled (and is retried).
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;
const TIMEOUT_MARK: &str = "dit-wasm: timed out";

/// Starts `req` with an abort controller (so a stalled request can be cut).
fn global_fetch(req: &web_sys::Request) -> std::result::Result<js_sys::Promise, JsValue> {
    let global = js_sys::global();
    if let Some(w) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        Ok(w.fetch_with_request(req))
    } else if let Some(w) = global.dyn_ref::<web_sys::Window>() {
        Ok(w.fetch_with_request(req))
    } else {
        Err(JsValue::from_str("no fetch in this context"))
    }
}

/// A GET request (with a single `Range: bytes=N-M` header when given, a CORS-safelisted header: no preflight) and
/// the controller that aborts it.
fn get_request(
    url: &str,
    range: Option<(u64, u64)>,
) -> std::result::Result<(web_sys::Request, web_sys::AbortController), (String, bool)> {
    let controller = web_sys::AbortController::new().map_err(|e| (js_err(e), false))?;
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_signal(Some(&controller.signal()));
    // Some hosts refused Hub requests for their referrer; the weights need none.
    let _ = Reflect::set(&init, &"referrerPolicy".into(), &"no-referrer".into());
    if let Some((start, end)) = range {
        // Parts of multi-GB files: kept by the loader in fp16, not twice in the HTTP cache.
        let _ = Reflect::set(&init, &"cache".into(), &"no-store".into());
        let headers = web_sys::Headers::new().map_err(|e| (js_err(e), false))?;
        headers.set("Range", &format!("bytes={start}-{}", end - 1)).map_err(|e| (js_err(e), false))?;
        init.set_headers(&headers);
    }
    let req = web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| (js_err(e), false))?;
    Ok((req, controller))
}

/// Awaits `promise`, giving up (and aborting the request) when it has not settled within `ms`: a stalled server is
/// a retryable error, not a hang.
async fn within(
    promise: js_sys::Promise,
    ms: u32,
    controller: &web_sys::AbortController,
    what: &str,
) -> std::result::Result<JsValue, (String, bool)> {
    let global = js_sys::global();
    let mut timer_id = JsValue::UNDEFINED;
    let timer = js_sys::Promise::new(&mut |_, reject| {
        if let Ok(f) = Reflect::get(&global, &"setTimeout".into()) {
            if let Some(f) = f.dyn_ref::<js_sys::Function>() {
                timer_id =
                    f.call3(&global, &reject, &JsValue::from(ms), &JsValue::from_str(TIMEOUT_MARK)).unwrap_or_default();
            }
        }
    });
    let race = js_sys::Promise::race(&js_sys::Array::of2(&promise, &timer));
    let result = JsFuture::from(race).await;
    // One timer per awaited chunk: clear it rather than leave thousands pending during a download.
    if let Ok(f) = Reflect::get(&global, &"clearTimeout".into()) {
        if let Some(f) = f.dyn_ref::<js_sys::Function>() {
            let _ = f.call1(&global, &timer_id);
        }
    }
    result.map_err(|e| {
        if e.as_string().as_deref() == Some(TIMEOUT_MARK) {
            controller.abort();
            (format!("timed out: no {what} for {:.0} s", ms as f64 / 1000.0), true)
        } else {
            (format!("network error: {}", js_err(e)), true)
        }
    })
}

fn global_caches() -> Option<web_sys::CacheStorage> {
    let global = js_sys::global();
    if let Some(w) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        w.caches().ok()
    } else if let Some(w) = global.dyn_ref::<web_sys::Window>() {
        w.caches().ok()
    } else {
        None
    }
}

impl UrlSource {
    /// `base`: the URL of the directory holding `model.safetensors.index.json` and the shards.
    /// `timeout_ms`: how long a response or the next bytes of a body may take before the request is retried.
    pub fn new(base: &str, use_cache: bool, timeout_ms: u32, progress: Option<js_sys::Function>) -> UrlSource {
        UrlSource {
            base: base.trim_end_matches('/').to_string(),
            use_cache,
            timeout_ms,
            progress,
            loaded: Cell::new(0.0),
            total: Cell::new(0.0),
            refused: Cell::new(None),
        }
    }

    fn url(&self, file: &str) -> String {
        format!("{}/{file}", self.base)
    }

    fn report(&self, file: &str, cached: bool) {
        if let Some(f) = &self.progress {
            let ev = Object::new();
            let _ = Reflect::set(&ev, &"phase".into(), &"download".into());
            let _ = Reflect::set(&ev, &"file".into(), &file.into());
            let _ = Reflect::set(&ev, &"loaded".into(), &self.loaded.get().into());
            let _ = Reflect::set(&ev, &"total".into(), &self.total.get().into());
            let _ = Reflect::set(&ev, &"cached".into(), &cached.into());
            let _ = f.call1(&JsValue::NULL, &ev);
        }
    }

    /// One GET with streamed progress; `Err((message, retry))`.
    async fn fetch_once(
        &self,
        url: &str,
        file: &str,
        count_progress: bool,
    ) -> std::result::Result<Vec<u8>, (String, bool)> {
        let (req, controller) = get_request(url, None)?;
        let resp =
            within(global_fetch(&req).map_err(|e| (js_err(e), false))?, self.timeout_ms, &controller, "response")
                .await?;
        let resp: web_sys::Response = resp.dyn_into().map_err(|_| ("not an HTTP response".to_string(), false))?;
        if !resp.ok() {
            let status = resp.status();
            if matches!(status, 401 | 403 | 404) {
                self.refused.set(Some(status));
            }
            return Err((format!("HTTP {status} {}", resp.status_text()), status >= 500 || status == 429));
        }
        let Some(body) = resp.body() else {
            let buf = within(resp.array_buffer().map_err(|e| (js_err(e), true))?, self.timeout_ms, &controller, "data")
                .await?;
            return Ok(Uint8Array::new(&buf).to_vec());
        };
        let reader: web_sys::ReadableStreamDefaultReader =
            body.get_reader().dyn_into().map_err(|_| ("unreadable body".to_string(), false))?;
        let mut out = Vec::new();
        let start = self.loaded.get();
        loop {
            let chunk = within(reader.read(), self.timeout_ms, &controller, "data").await.map_err(|(m, r)| {
                (if m.starts_with("network error") { format!("connection dropped: {m}") } else { m }, r)
            })?;
            if Reflect::get(&chunk, &"done".into()).map(|v| v.is_truthy()).unwrap_or(true) {
                break;
            }
            let value = Reflect::get(&chunk, &"value".into()).map_err(|e| (js_err(e), true))?;
            out.extend(Uint8Array::new(&value).to_vec());
            if count_progress {
                self.loaded.set(start + out.len() as f64);
                self.report(file, false);
            }
        }
        Ok(out)
    }

    /// GET with retries and exponential backoff.
    async fn fetch(&self, file: &str, count_progress: bool) -> Result<Vec<u8>> {
        let url = self.url(file);
        let start = self.loaded.get();
        let mut last = String::new();
        self.refused.set(None);
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                sleep_ms(250 << attempt).await;
                self.loaded.set(start);
            }
            match self.fetch_once(&url, file, count_progress).await {
                Ok(b) => return Ok(b),
                Err((msg, retry)) => {
                    last = msg;
                    if !retry {
                        break;
                    }
                }
            }
        }
        if let Some(status) = self.refused.get() {
            return Err(status_error(&url, status, ""));
        }
        Err(Error::Download { url, msg: format!("{last} (after retries); check the model URL and your connection") })
    }

    async fn cache(&self) -> Option<web_sys::Cache> {
        if !self.use_cache {
            return None;
        }
        open_cache(CACHE_NAME).await
    }
}

/// The Cache Storage cache `name`, where this context has Cache Storage.
pub(crate) async fn open_cache(name: &str) -> Option<web_sys::Cache> {
    let caches = global_caches()?;
    JsFuture::from(caches.open(name)).await.ok()?.dyn_into().ok()
}

/// The body cached under `url`, if any.
pub(crate) async fn cache_get(cache: &web_sys::Cache, url: &str) -> Option<Vec<u8>> {
    let hit = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let resp: web_sys::Response = hit.dyn_into().ok()?;
    let buf = JsFuture::from(resp.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&buf).to_vec())
}

/// Caches `bytes` under `url` (best effort: a full or refused cache is skipped).
pub(crate) async fn cache_put(cache: &web_sys::Cache, url: &str, bytes: &[u8]) {
    let arr = Uint8Array::from(bytes);
    if let Ok(resp) = web_sys::Response::new_with_opt_buffer_source(Some(&arr)) {
        let _ = JsFuture::from(cache.put_with_str(url, &resp)).await;
    }
}

impl Source for UrlSource {
    fn describe(&self) -> String {
        self.base.clone()
    }

    async fn read(&self, file: &str) -> Result<Vec<u8>> {
        if file == INDEX_FILE {
            // The index is small: always asked for, so a changed model is noticed; the cached copy serves offline.
            let url = self.url(file);
            let cache = self.cache().await;
            match self.fetch(file, false).await {
                Ok(b) => {
                    if let Ok(idx) = ModelIndex::parse(&b) {
                        self.total.set(idx.download_size() as f64);
                        if let Some(c) = &cache {
                            cache_put(c, &url, &b).await;
                        }
                    }
                    Ok(b)
                }
                Err(e) => match &cache {
                    Some(c) => cache_get(c, &url).await.ok_or(e),
                    None => Err(e),
                },
            }
        } else {
            self.fetch(file, true).await
        }
    }

    async fn read_shard(&self, index: &ModelIndex, shard: &str) -> Result<Vec<u8>> {
        let url = self.url(shard);
        let cache = self.cache().await;
        if let Some(c) = &cache {
            if let Some(bytes) = cache_get(c, &url).await {
                if verify_shard(index, shard, &bytes).is_ok() {
                    self.loaded.set(self.loaded.get() + bytes.len() as f64);
                    self.report(shard, true);
                    return Ok(bytes);
                }
                // A corrupt or stale cached copy: drop it and fetch again.
                let _ = JsFuture::from(c.delete_with_str(&url)).await;
            }
        }
        let bytes = self.fetch(shard, true).await?;
        verify_shard(index, shard, &bytes)?;
        if let Some(c) = &cache {
            cache_put(c, &url, &bytes).await;
        }
        Ok(bytes)
    }
}

/// The typed error for an HTTP status that no retry will change (404, 401/403, other 4xx).
fn status_error(url: &str, status: u16, text: &str) -> Error {
    match status {
        404 => Error::NotFound { url: url.to_string() },
        401 | 403 => Error::Gated { url: url.to_string(), status },
        _ => Error::Download { url: url.to_string(), msg: format!("HTTP {status} {text}") },
    }
}

/// Whether this context says it is offline (`navigator.onLine === false`): then a request is not retried.
fn offline() -> bool {
    Reflect::get(&js_sys::global(), &"navigator".into())
        .ok()
        .and_then(|n| Reflect::get(&n, &"onLine".into()).ok())
        .is_some_and(|v| v == JsValue::FALSE)
}

/// Why one attempt at a range failed: retried (a dropped connection, a stall, a 5xx), or not (anything else).
enum Fail {
    Retry(String),
    Stop(Error),
}

/// One file on any server that honours HTTP Range requests (a `.safetensors` or a torch `.bin` zip on the Hub, its
/// CDN, or any static host), read in ranges (see `weights::single`). The requests are those the Hub's CDN answers
/// from a page on another origin: a GET whose only header is one `Range: bytes=N-M` (a CORS-safelisted header, so no
/// preflight), without a referrer, outside the HTTP cache (the weights are kept in fp16 by the loader instead);
/// redirects (the Hub's 302 to its CDN) are followed by `fetch`.
pub struct RangeUrl {
    url: String,
    timeout_ms: u32,
    progress: Option<js_sys::Function>,
    /// The file's size, from the first `Content-Range` seen.
    size: Cell<Option<u64>>,
}

/// Attempts in a row that bring no new byte before a range read gives up.
const RANGE_ATTEMPTS: u32 = 5;

impl RangeUrl {
    pub fn new(url: &str, timeout_ms: u32, progress: Option<js_sys::Function>) -> RangeUrl {
        RangeUrl { url: url.to_string(), timeout_ms, progress, size: Cell::new(None) }
    }

    /// The URL read.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The file's size, once a range of it was read.
    pub fn known_size(&self) -> Option<u64> {
        self.size.get()
    }

    /// Reports `{ phase: "download", file, loaded, total, cached: false }`.
    pub fn report(&self, loaded: u64, total: u64) {
        report_download(&self.progress, &self.url, loaded as f64, total as f64, false);
    }

    /// A GET as the Hub's CDN accepts it from another origin (see the type's doc).
    fn request(
        &self,
        url: &str,
        range: Option<(u64, u64)>,
    ) -> std::result::Result<(web_sys::Request, web_sys::AbortController), Fail> {
        let (req, controller) = get_request(url, range).map_err(|(m, _)| Fail::Stop(self.download_error(m)))?;
        Ok((req, controller))
    }

    fn download_error(&self, msg: String) -> Error {
        Error::Download { url: self.url.clone(), msg }
    }

    /// One attempt at bytes `from..end`, appending what arrives to `out` (kept when the connection drops, so that
    /// the next attempt asks only for the rest).
    async fn stream_once(&self, from: u64, end: u64, out: &mut Vec<u8>) -> std::result::Result<(), Fail> {
        let (req, controller) = self.request(&self.url, Some((from, end)))?;
        let promise = global_fetch(&req).map_err(|e| Fail::Stop(self.download_error(js_err(e))))?;
        let resp = within(promise, self.timeout_ms, &controller, "response").await.map_err(|(m, _)| Fail::Retry(m))?;
        let resp: web_sys::Response =
            resp.dyn_into().map_err(|_| Fail::Stop(self.download_error("not an HTTP response".into())))?;
        let status = resp.status();
        if status == 200 {
            // The whole file is on its way: stop it rather than buffer gigabytes.
            controller.abort();
            return Err(Fail::Stop(self.download_error(
                "the server ignored the Range request (it answered 200 with the whole file), so the file cannot be \
                 read in parts: host it on a server that supports HTTP Range requests, or convert it with \
                 `dit convert` and use the model directory"
                    .into(),
            )));
        }
        if status == 416 {
            return Err(Fail::Stop(Error::format(
                &self.url,
                format!("bytes {from}..{end} are past the end of the file (HTTP 416); the file is truncated"),
            )));
        }
        if status >= 500 || status == 429 {
            return Err(Fail::Retry(format!("HTTP {status} {}", resp.status_text())));
        }
        if status != 206 {
            return Err(Fail::Stop(status_error(&self.url, status, &resp.status_text())));
        }
        // `Content-Range: bytes from-last/size` (exposed by the Hub's CDN): the part must start where asked.
        let content_range = resp.headers().get("content-range").ok().flatten().unwrap_or_default();
        let parsed = content_range
            .strip_prefix("bytes ")
            .and_then(|r| r.split_once('/'))
            .and_then(|(span, size)| Some((span.split_once('-')?.0.parse::<u64>().ok()?, size.parse::<u64>().ok())));
        match parsed {
            Some((first, size)) if first == from => {
                if size.is_some() {
                    self.size.set(size);
                }
            }
            _ => {
                controller.abort();
                return Err(Fail::Stop(self.download_error(format!(
                    "asked for bytes {from}..{end} and the server answered Content-Range `{content_range}`"
                ))));
            }
        }
        let want = (end - from) as usize;
        let base = out.len();
        let Some(body) = resp.body() else { return Err(Fail::Retry("a response without a body".into())) };
        let reader: web_sys::ReadableStreamDefaultReader =
            body.get_reader().dyn_into().map_err(|_| Fail::Stop(self.download_error("unreadable body".into())))?;
        loop {
            let chunk = within(reader.read(), self.timeout_ms, &controller, "data").await.map_err(|(m, _)| {
                Fail::Retry(if m.starts_with("network error") { format!("connection dropped: {m}") } else { m })
            })?;
            if Reflect::get(&chunk, &"done".into()).map(|v| v.is_truthy()).unwrap_or(true) {
                return Ok(());
            }
            let value = Reflect::get(&chunk, &"value".into()).map_err(|e| Fail::Retry(js_err(e)))?;
            let bytes = Uint8Array::new(&value);
            if out.len() - base + bytes.length() as usize > want {
                controller.abort();
                return Err(Fail::Stop(self.download_error(format!(
                    "asked for {want} bytes from {from} and the server sent more; it does not honour Range requests"
                ))));
            }
            let at = out.len();
            out.resize(at + bytes.length() as usize, 0);
            bytes.copy_to(&mut out[at..]);
        }
    }

    /// One GET of a whole small file (a `config.json`, `model_index.json`), retried on server errors;
    /// `Ok(None)` when the server says it is not there (404).
    pub async fn get_small(&self, url: &str) -> Result<Option<(Vec<u8>, String)>> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                if offline() {
                    break;
                }
                sleep_ms(250 << attempt).await;
            }
            let (req, controller) = match self.request(url, None) {
                Ok(r) => r,
                Err(Fail::Stop(e)) => return Err(e),
                Err(Fail::Retry(m)) => {
                    last = m;
                    continue;
                }
            };
            let promise = global_fetch(&req).map_err(|e| Error::Download { url: url.into(), msg: js_err(e) })?;
            let resp = match within(promise, self.timeout_ms, &controller, "response").await {
                Ok(r) => r,
                Err((m, _)) => {
                    last = m;
                    continue;
                }
            };
            let resp: web_sys::Response =
                resp.dyn_into().map_err(|_| Error::Download { url: url.into(), msg: "not an HTTP response".into() })?;
            let status = resp.status();
            if status == 404 {
                return Ok(None);
            }
            if status >= 500 || status == 429 {
                last = format!("HTTP {status} {}", resp.status_text());
                continue;
            }
            if !resp.ok() {
                return Err(status_error(url, status, &resp.status_text()));
            }
            let buf = match resp.array_buffer() {
                Ok(p) => within(p, self.timeout_ms, &controller, "data").await,
                Err(e) => Err((js_err(e), true)),
            };
            match buf {
                Ok(buf) => return Ok(Some((Uint8Array::new(&buf).to_vec(), resp.url()))),
                Err((m, _)) => last = m,
            }
        }
        Err(Error::Download {
            url: url.to_string(),
            msg: format!("{last} (after retries); check the URL and your connection"),
        })
    }
}

impl super::range::RangeSource for RangeUrl {
    fn describe(&self) -> String {
        self.url.clone()
    }

    /// Bytes `start..end`; a dropped or stalled connection resumes from the byte it reached (a few attempts in a
    /// row without progress, with backoff, before giving up).
    async fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        let len = (end - start) as usize;
        let mut out = Vec::with_capacity(len);
        let mut failures = 0u32;
        while out.len() < len {
            if failures > 0 {
                if failures >= RANGE_ATTEMPTS || offline() {
                    break;
                }
                sleep_ms(250 << failures).await;
            }
            let had = out.len();
            let last = match self.stream_once(start + had as u64, end, &mut out).await {
                Ok(()) if out.len() == len => break,
                Ok(()) => format!("the connection closed after {} of {len} bytes", out.len()),
                Err(Fail::Stop(e)) => return Err(e),
                Err(Fail::Retry(m)) => m,
            };
            failures = if out.len() > had { 1 } else { failures + 1 };
            if failures >= RANGE_ATTEMPTS || offline() {
                return Err(self.download_error(format!(
                    "bytes {start}..{end}: {last} (after {RANGE_ATTEMPTS} attempts without progress); check your connection"
                )));
            }
        }
        Ok(out)
    }

    /// The file's size: from the first part read, else `Range: bytes=0-0` and the total of the 206's
    /// `Content-Range` (as the Hub's own clients do; never a suffix range, which needs a preflight the Hub's CDN
    /// refuses).
    async fn size(&self) -> Result<u64> {
        if let Some(size) = self.size.get() {
            return Ok(size);
        }
        super::range::RangeSource::read_range(self, 0, 1).await?;
        self.size.get().ok_or_else(|| {
            self.download_error(
                "the file's size is unknown: its 206 answer has no readable Content-Range; a server on another origin \
                 must list it in Access-Control-Expose-Headers"
                    .into(),
            )
        })
    }

    async fn config_json(&self) -> Result<Option<Vec<u8>>> {
        let dir = self.url.split(['?', '#']).next().unwrap_or(&self.url);
        let Some(slash) = dir.rfind('/') else { return Ok(None) };
        // Absent (404): the defaults apply, as for `dit convert` without a config.json.
        Ok(self.get_small(&format!("{}/config.json", &dir[..slash])).await?.map(|(b, _)| b))
    }
}

/// Reports `{ phase: "download", file, loaded, total, cached }` to the JS progress callback.
pub fn report_download(progress: &Option<js_sys::Function>, file: &str, loaded: f64, total: f64, cached: bool) {
    if let Some(f) = progress {
        let ev = Object::new();
        let _ = Reflect::set(&ev, &"phase".into(), &"download".into());
        let _ = Reflect::set(&ev, &"file".into(), &file.into());
        let _ = Reflect::set(&ev, &"loaded".into(), &loaded.into());
        let _ = Reflect::set(&ev, &"total".into(), &total.into());
        let _ = Reflect::set(&ev, &"cached".into(), &cached.into());
        let _ = f.call1(&JsValue::NULL, &ev);
    }
}

/// The fp16 tensors of one model read from a single file (a Hub repo's component), kept in Cache Storage so that the
/// next visit downloads nothing and works offline. Entries are keyed by a caller's key that names where the file
/// came from (for the Hub: endpoint, repo, resolved commit and path) plus the file and tensor names, so another
/// revision or file never reads them. A tensor is written only after the reader has checked it (shape, finite
/// values), and the manifest (the model's index and its tensor list) is written last, once every tensor is stored:
/// a model without its manifest does not count as cached, and a failed load deletes what it wrote.
pub struct TensorCache {
    cache: web_sys::Cache,
    key: String,
    /// The source file the tensors are written from (part of their keys).
    file: std::cell::RefCell<String>,
    /// Writes under way; awaited before the next range is read (so that at most a range's tensors wait in memory)
    /// and before the manifest.
    pending: std::cell::RefCell<Vec<js_sys::Promise>>,
    /// The entries written by this load, deleted if it fails.
    written: std::cell::RefCell<Vec<String>>,
    /// Cleared when the storage cannot hold the model (then the load runs uncached).
    enabled: Cell<bool>,
}

/// What the manifest of a cached model records.
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    file: String,
    index: ModelIndex,
    tensors: Vec<(String, Vec<usize>)>,
}

/// The origin of the synthetic URLs that key cached tensors (never fetched).
const TENSOR_KEY_ORIGIN: &str = "https://tensors.dit-wasm.invalid";

impl TensorCache {
    /// The cache for the model `key` (see the type's doc), where this context has Cache Storage.
    pub async fn open(key: &str) -> Option<TensorCache> {
        let cache = open_cache(CACHE_NAME).await?;
        Some(TensorCache {
            cache,
            key: format!("{TENSOR_KEY_ORIGIN}/{}", String::from(js_sys::encode_uri_component(key))),
            file: Default::default(),
            pending: Default::default(),
            written: Default::default(),
            enabled: Cell::new(true),
        })
    }

    fn manifest_url(&self) -> String {
        format!("{}/manifest", self.key)
    }

    fn tensor_url(&self, file: &str, name: &str) -> String {
        let enc = |s: &str| String::from(js_sys::encode_uri_component(s));
        format!("{}/{}/{}", self.key, enc(file), enc(name))
    }

    /// Hands every cached tensor to `on_tensor` (and reports progress as `cached`) when the whole model is cached;
    /// `Ok(None)` when it is not (a missing or short entry deletes the manifest, so the model is fetched again).
    pub async fn load(
        &self,
        progress: &Option<js_sys::Function>,
        mut on_tensor: impl FnMut(&str, &[usize], &[u8]) -> Result<()>,
    ) -> Result<Option<ModelIndex>> {
        let Some(bytes) = cache_get(&self.cache, &self.manifest_url()).await else { return Ok(None) };
        let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else {
            let _ = JsFuture::from(self.cache.delete_with_str(&self.manifest_url())).await;
            return Ok(None);
        };
        let total: f64 = m.tensors.iter().map(|(_, s)| (s.iter().product::<usize>() * 2) as f64).sum();
        // Named in progress as the download named it (its URL), so that the page tells the files apart.
        let label = m.index.metadata.extra.get("source").and_then(|v| v.as_str()).unwrap_or(&m.file).to_string();
        let mut loaded = 0.0;
        for (name, shape) in &m.tensors {
            let bytes = cache_get(&self.cache, &self.tensor_url(&m.file, name)).await;
            let Some(bytes) = bytes.filter(|b| b.len() == shape.iter().product::<usize>() * 2) else {
                let _ = JsFuture::from(self.cache.delete_with_str(&self.manifest_url())).await;
                return Ok(None);
            };
            on_tensor(name, shape, &bytes)?;
            loaded += bytes.len() as f64;
            report_download(progress, &label, loaded, total, true);
        }
        Ok(Some(m.index))
    }

    /// Sets the file that the next tensors come from.
    pub fn set_file(&self, file: &str) {
        *self.file.borrow_mut() = file.to_string();
    }

    /// Starts writing one checked tensor (fp16 bytes); the write is awaited by [`TensorCache::settle`].
    pub fn put(&self, name: &str, bytes: &[u8]) {
        if !self.enabled.get() {
            return;
        }
        let url = self.tensor_url(&self.file.borrow(), name);
        let arr = Uint8Array::from(bytes);
        if let Ok(resp) = web_sys::Response::new_with_opt_buffer_source(Some(&arr)) {
            self.pending.borrow_mut().push(self.cache.put_with_str(&url, &resp));
            self.written.borrow_mut().push(url);
        }
    }

    /// Awaits the writes under way; when one failed (a full storage), stops caching this model, deletes what it
    /// wrote and says why (as a `notice` progress event).
    pub async fn settle(&self, progress: &Option<js_sys::Function>) {
        let pending: Vec<js_sys::Promise> = self.pending.borrow_mut().drain(..).collect();
        let mut failed = None;
        for p in pending {
            if let Err(e) = JsFuture::from(p).await {
                failed.get_or_insert(js_err(e));
            }
        }
        if let Some(why) = failed {
            if self.enabled.get() {
                self.disable(progress, &format!("the browser refused to store it ({why})")).await;
            }
        }
    }

    /// Stops caching this model (it still loads) and tells the page why.
    async fn disable(&self, progress: &Option<js_sys::Function>, why: &str) {
        self.enabled.set(false);
        self.discard().await;
        if let Some(f) = progress {
            let ev = Object::new();
            let _ = Reflect::set(&ev, &"phase".into(), &"download".into());
            let msg =
                format!("this model is not kept for the next visit: {why}; it loads now and downloads again next time");
            let _ = Reflect::set(&ev, &"notice".into(), &msg.into());
            let _ = f.call1(&JsValue::NULL, &ev);
        }
    }

    /// Checks, before a download of about `need` bytes of fp16 weights, that the storage quota can hold them
    /// (`navigator.storage.estimate()`); where it cannot, the model runs uncached, with a notice.
    pub async fn ensure_room(&self, need: u64, progress: &Option<js_sys::Function>) {
        if !self.enabled.get() {
            return;
        }
        let Some((usage, quota)) = storage_estimate().await else { return };
        if usage + need as f64 > quota {
            let why = format!(
                "it needs about {:.0} MB and this site may store {:.0} MB more",
                need as f64 / 1e6,
                ((quota - usage) / 1e6).max(0.0)
            );
            self.disable(progress, &why).await;
        }
    }

    /// Records the model as complete: awaits its tensors' writes, then writes the manifest. Returns whether the
    /// model is now cached.
    pub async fn commit(
        &self,
        index: &ModelIndex,
        tensors: Vec<(String, Vec<usize>)>,
        progress: &Option<js_sys::Function>,
    ) -> bool {
        self.settle(progress).await;
        if !self.enabled.get() {
            return false;
        }
        let m = Manifest { file: self.file.borrow().clone(), index: index.clone(), tensors };
        let Ok(json) = serde_json::to_vec(&m) else { return false };
        let arr = Uint8Array::from(json.as_slice());
        let Ok(resp) = web_sys::Response::new_with_opt_buffer_source(Some(&arr)) else { return false };
        if let Err(e) = JsFuture::from(self.cache.put_with_str(&self.manifest_url(), &resp)).await {
            self.disable(progress, &format!("the browser refused to store it ({})", js_err(e))).await;
            return false;
        }
        true
    }

    /// Deletes every entry this load wrote (a failed or refused load leaves nothing behind).
    pub async fn discard(&self) {
        let pending: Vec<js_sys::Promise> = self.pending.borrow_mut().drain(..).collect();
        for p in pending {
            let _ = JsFuture::from(p).await;
        }
        let written: Vec<String> = self.written.borrow_mut().drain(..).collect();
        for url in written {
            let _ = JsFuture::from(self.cache.delete_with_str(&url)).await;
        }
    }
}

/// `navigator.storage.estimate()`: (usage, quota) in bytes, where this context offers it.
async fn storage_estimate() -> Option<(f64, f64)> {
    let nav = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let storage = Reflect::get(&nav, &"storage".into()).ok().filter(|s| !s.is_undefined())?;
    let f: js_sys::Function = Reflect::get(&storage, &"estimate".into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = f.call0(&storage).ok()?.dyn_into().ok()?;
    let est = JsFuture::from(promise).await.ok()?;
    let usage = Reflect::get(&est, &"usage".into()).ok()?.as_f64().unwrap_or(0.0);
    let quota = Reflect::get(&est, &"quota".into()).ok()?.as_f64()?;
    Some((usage, quota))
}

/// A [`RangeUrl`] whose reads first let the tensor writes of the previous range finish (bounding what waits in
/// memory), and which checks the storage quota once the file's size is known.
pub struct CachedRange<'a> {
    pub src: &'a RangeUrl,
    pub cache: Option<&'a TensorCache>,
    checked: Cell<bool>,
}

impl<'a> CachedRange<'a> {
    pub fn new(src: &'a RangeUrl, cache: Option<&'a TensorCache>) -> CachedRange<'a> {
        CachedRange { src, cache, checked: Cell::new(false) }
    }
}

impl super::range::RangeSource for CachedRange<'_> {
    fn describe(&self) -> String {
        self.src.url.clone()
    }

    async fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        if let Some(c) = self.cache {
            c.settle(&self.src.progress).await;
            if let (false, Some(size)) = (self.checked.get(), self.src.known_size()) {
                self.checked.set(true);
                // f32 checkpoints (the official ones) become half their size in fp16.
                c.ensure_room(size / 2, &self.src.progress).await;
            }
        }
        self.src.read_range(start, end).await
    }

    async fn size(&self) -> Result<u64> {
        self.src.size().await
    }

    async fn config_json(&self) -> Result<Option<Vec<u8>>> {
        self.src.config_json().await
    }
}
