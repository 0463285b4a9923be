//! Model files over HTTP in the browser (window or worker): byte-level progress, retries with backoff, the sha256 of
//! every shard checked before use, and Cache Storage so that a second visit downloads no shard.
//!
//! What the cache may hold and what is trusted: an entry is written only whole, after its bytes were checked (a shard
//! against the index's sha256; a tensor read by ranges after its shape and values, its sha256 then recorded in the
//! model's manifest, written last). Every entry is checked again when read, and one that fails (damaged on disk,
//! written by an older layout, or left without its manifest by an interrupted load) is deleted and fetched again,
//! with a notice. A write the browser refuses (its quota) never fails a load: the model runs uncached, with a notice.
//! Caches of an earlier version of a bucket (`dit-wasm-weights-v0` beside `-v1`) are deleted when the current one is
//! first opened.

#![cfg(target_arch = "wasm32")]

use super::index::{ModelIndex, INDEX_FILE};
use super::load::{verify_shard, Source};
use crate::error::{Error, Result};
use js_sys::{Reflect, Uint8Array};
use std::cell::Cell;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

mod dir;
mod ranged;
mod tensors;

pub use dir::UrlSource;
pub use ranged::RangeUrl;
pub use tensors::{CachedRange, TensorCache};

/// Name of the Cache Storage bucket holding shards.
pub const CACHE_NAME: &str = "dit-wasm-weights-v1";
/// Attempts per file before giving up (server errors and network failures; a 4xx fails at once).
const ATTEMPTS: u32 = 4;

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

/// Where a load is (the package's `LoadProgress`): bytes while downloading, then the phases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, tsify::Tsify)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Adapter,
    #[default]
    Download,
    Compile,
    Ready,
}

/// A loading event, as the JS progress callback receives it.
#[derive(Clone, Debug, Default, serde::Serialize, tsify::Tsify)]
pub struct LoadProgress {
    pub phase: Phase,
    /// The file being downloaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Bytes of weights obtained so far (the current model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<f64>,
    /// Bytes of weights in all (the current model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// Whether the file came from Cache Storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    /// Something the page should show: for example that the browser's storage cannot hold the model, so it loads
    /// uncached and downloads again on the next visit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl LoadProgress {
    /// Hands the event to the JS progress callback, if there is one. (An event of strings, numbers and flags always
    /// serialises; were it ever not to, the console says so and the load goes on.)
    pub fn send(&self, progress: &Option<js_sys::Function>) {
        let Some(f) = progress else { return };
        match serde_wasm_bindgen::to_value(self) {
            Ok(ev) => {
                let _ = f.call1(&JsValue::NULL, &ev);
            }
            Err(e) => web_sys::console::error_1(&format!("dit-wasm: a progress event did not serialise: {e}").into()),
        }
    }
}

/// Reports `{ phase: "download", notice }` to the JS progress callback: something the page should show.
pub(crate) fn report_notice(progress: &Option<js_sys::Function>, msg: &str) {
    LoadProgress { notice: Some(msg.to_string()), ..LoadProgress::default() }.send(progress);
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

/// The Cache Storage cache `name`, where this context has Cache Storage. The first time a bucket `NAME-vN` is opened
/// in this context, the buckets of its other versions are deleted (their layout is not this code's).
pub(crate) async fn open_cache(name: &str) -> Option<web_sys::Cache> {
    let caches = global_caches()?;
    delete_other_versions(&caches, name).await;
    JsFuture::from(caches.open(name)).await.ok()?.dyn_into().ok()
}

thread_local! {
    /// The buckets whose older versions were looked for in this context.
    static SWEPT: std::cell::RefCell<std::collections::BTreeSet<String>> = Default::default();
}

/// Deletes the buckets `FAMILY-vM` (M != N) beside `name` = `FAMILY-vN`, once per context.
async fn delete_other_versions(caches: &web_sys::CacheStorage, name: &str) {
    let Some((family, version)) = name.rsplit_once("-v") else { return };
    if !SWEPT.with(|s| s.borrow_mut().insert(name.to_string())) {
        return;
    }
    let Ok(keys) = JsFuture::from(caches.keys()).await else { return };
    for other in js_sys::Array::from(&keys).iter().filter_map(|k| k.as_string()) {
        let old = other
            .strip_prefix(family)
            .and_then(|rest| rest.strip_prefix("-v"))
            .is_some_and(|v| v != version && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        if old {
            let _ = JsFuture::from(caches.delete(&other)).await;
        }
    }
}

/// The body cached under `url`, if any.
pub(crate) async fn cache_get(cache: &web_sys::Cache, url: &str) -> Option<Vec<u8>> {
    let hit = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let resp: web_sys::Response = hit.dyn_into().ok()?;
    let buf = JsFuture::from(resp.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&buf).to_vec())
}

/// Caches `bytes` under `url`; `Err(why)` when the browser refused (a full storage: `QuotaExceededError`). The Cache
/// API writes an entry whole or not at all.
pub(crate) async fn cache_put(cache: &web_sys::Cache, url: &str, bytes: &[u8]) -> std::result::Result<(), String> {
    let arr = Uint8Array::from(bytes);
    let resp = web_sys::Response::new_with_opt_buffer_source(Some(&arr)).map_err(js_err)?;
    JsFuture::from(cache.put_with_str(url, &resp)).await.map(|_| ()).map_err(js_err)
}

/// Deletes the entry under `url`, if any.
pub(crate) async fn cache_delete(cache: &web_sys::Cache, url: &str) {
    let _ = JsFuture::from(cache.delete_with_str(url)).await;
}

/// `navigator.storage.estimate()`: (usage, quota) in bytes, where this context offers it.
pub(crate) async fn storage_estimate() -> Option<(f64, f64)> {
    let nav = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let storage = Reflect::get(&nav, &"storage".into()).ok().filter(|s| !s.is_undefined())?;
    let f: js_sys::Function = Reflect::get(&storage, &"estimate".into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = f.call0(&storage).ok()?.dyn_into().ok()?;
    let est = JsFuture::from(promise).await.ok()?;
    let usage = Reflect::get(&est, &"usage".into()).ok()?.as_f64().unwrap_or(0.0);
    let quota = Reflect::get(&est, &"quota".into()).ok()?.as_f64()?;
    Some((usage, quota))
}

/// Why a download of `need` more bytes would not fit the storage quota, if it would not.
pub(crate) async fn no_room_for(need: f64) -> Option<String> {
    let (usage, quota) = storage_estimate().await?;
    (usage + need > quota).then(|| {
        format!(
            "it needs about {:.0} MB and this site may store {:.0} MB more",
            need / 1e6,
            ((quota - usage) / 1e6).max(0.0)
        )
    })
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

/// Reports `{ phase: "download", file, loaded, total, cached }` to the JS progress callback.
pub fn report_download(progress: &Option<js_sys::Function>, file: &str, loaded: f64, total: f64, cached: bool) {
    let ev = LoadProgress {
        file: Some(file.to_string()),
        loaded: Some(loaded),
        total: Some(total),
        cached: Some(cached),
        ..LoadProgress::default()
    };
    ev.send(progress);
}
