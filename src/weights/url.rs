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

/// A GET request (with a `Range` header when given) and the controller that aborts it.
fn get_request(
    url: &str,
    range: Option<(u64, u64)>,
) -> std::result::Result<(web_sys::Request, web_sys::AbortController), (String, bool)> {
    let controller = web_sys::AbortController::new().map_err(|e| (js_err(e), false))?;
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_signal(Some(&controller.signal()));
    if let Some((start, end)) = range {
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

/// One `.safetensors` file on any server that honours HTTP Range requests, read in ranges (see `weights::single`).
pub struct RangeUrl {
    url: String,
    timeout_ms: u32,
    progress: Option<js_sys::Function>,
}

impl RangeUrl {
    pub fn new(url: &str, timeout_ms: u32, progress: Option<js_sys::Function>) -> RangeUrl {
        RangeUrl { url: url.to_string(), timeout_ms, progress }
    }

    /// Reports `{ phase: "download", file, loaded, total, cached: false }`.
    pub fn report(&self, loaded: u64, total: u64) {
        if let Some(f) = &self.progress {
            let ev = Object::new();
            let _ = Reflect::set(&ev, &"phase".into(), &"download".into());
            let _ = Reflect::set(&ev, &"file".into(), &self.url.as_str().into());
            let _ = Reflect::set(&ev, &"loaded".into(), &(loaded as f64).into());
            let _ = Reflect::set(&ev, &"total".into(), &(total as f64).into());
            let _ = Reflect::set(&ev, &"cached".into(), &false.into());
            let _ = f.call1(&JsValue::NULL, &ev);
        }
    }

    /// One GET of `range` (`bytes=a-b`, or none); `Err((message, retry))`.
    async fn get_once(&self, url: &str, range: Option<(u64, u64)>) -> std::result::Result<Vec<u8>, (String, bool)> {
        let (req, controller) = get_request(url, range)?;
        let resp =
            within(global_fetch(&req).map_err(|e| (js_err(e), false))?, self.timeout_ms, &controller, "response")
                .await?;
        let resp: web_sys::Response = resp.dyn_into().map_err(|_| ("not an HTTP response".to_string(), false))?;
        let status = resp.status();
        if range.is_some() && status == 200 {
            if let Some(body) = resp.body() {
                let _ = body.cancel();
            }
            return Err((
                "the server ignored the Range request (it answered 200 with the whole file): host the file on a server \
                 that supports HTTP Range requests, or convert it with `dit convert` and use the model directory"
                    .into(),
                false,
            ));
        }
        if !resp.ok() {
            return Err((format!("HTTP {status} {}", resp.status_text()), status >= 500 || status == 429));
        }
        let buf = within(resp.array_buffer().map_err(|e| (js_err(e), true))?, self.timeout_ms, &controller, "data")
            .await
            .map_err(|(m, r)| {
                (if m.starts_with("network error") { format!("connection dropped: {m}") } else { m }, r)
            })?;
        Ok(Uint8Array::new(&buf).to_vec())
    }

    async fn get(&self, url: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                sleep_ms(250 << attempt).await;
            }
            match self.get_once(url, range).await {
                Ok(b) => return Ok(b),
                Err((msg, retry)) => {
                    last = msg;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(Error::Download { url: url.to_string(), msg: last })
    }
}

impl super::single::RangeSource for RangeUrl {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        if start == end {
            return Ok(vec![]);
        }
        self.get(&self.url, Some((start, end))).await
    }

    /// `Range: bytes=0-0` (a single range: CORS-safelisted, no preflight) and the total of the 206's `Content-Range:
    /// bytes 0-0/TOTAL`, as the Hub's own clients do; never a suffix range, which needs a preflight the Hub's CDN
    /// refuses.
    async fn size(&self) -> Result<u64> {
        let err = |msg: String| Error::Download { url: self.url.clone(), msg };
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                sleep_ms(250 << attempt).await;
            }
            let (req, controller) = get_request(&self.url, Some((0, 1))).map_err(|(m, _)| err(m))?;
            let fetched = global_fetch(&req).map_err(|e| err(js_err(e)))?;
            let resp = match within(fetched, self.timeout_ms, &controller, "response").await {
                Ok(r) => r,
                Err((m, retry)) => {
                    last = m;
                    if retry {
                        continue;
                    }
                    break;
                }
            };
            let resp: web_sys::Response = resp.dyn_into().map_err(|_| err("not an HTTP response".into()))?;
            let status = resp.status();
            if let Some(body) = resp.body() {
                let _ = body.cancel();
            }
            if status == 206 {
                let range = resp.headers().get("Content-Range").ok().flatten();
                let total = range.as_deref().and_then(|v| v.rsplit_once('/')).and_then(|(_, t)| t.trim().parse().ok());
                return total.ok_or_else(|| {
                    err(format!(
                        "the file's size is unknown: its 206 answer has no readable Content-Range ({range:?}); a server \
                         on another origin must list it in Access-Control-Expose-Headers"
                    ))
                });
            }
            if status == 200 {
                return Err(err(
                    "the server ignored the Range request (it answered 200 with the whole file): host the \
                     file on a server that supports HTTP Range requests, or convert it with `dit convert` and use the \
                     model directory"
                        .into(),
                ));
            }
            last = format!("HTTP {status} {}", resp.status_text());
            if !(status >= 500 || status == 429) {
                break;
            }
        }
        Err(err(last))
    }

    async fn config_json(&self) -> Result<Option<Vec<u8>>> {
        let dir = self.url.split(['?', '#']).next().unwrap_or(&self.url);
        let Some(slash) = dir.rfind('/') else { return Ok(None) };
        // Absent (404) or unreachable: the defaults apply, as for `dit convert` without a config.json.
        Ok(self.get_once(&format!("{}/config.json", &dir[..slash]), None).await.ok())
    }
}
