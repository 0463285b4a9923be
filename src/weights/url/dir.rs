//! A model directory over HTTP: the index, then each shard, verified, from Cache Storage when it is there. A shard is
//! cached only whole and after its sha256 matched the index, and checked again whenever it is read from the cache.

use super::*;

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
    /// Cleared when the storage cannot hold the model (then the rest of it loads uncached).
    keep: Cell<bool>,
    /// Whether the storage quota was compared with what is left to download.
    room_checked: Cell<bool>,
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
            keep: Cell::new(true),
            room_checked: Cell::new(false),
        }
    }

    fn url(&self, file: &str) -> String {
        format!("{}/{file}", self.base)
    }

    fn report(&self, file: &str, cached: bool) {
        report_download(&self.progress, file, self.loaded.get(), self.total.get(), cached);
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

    /// Stops caching this model's files (those kept stay: each is checked when read) and tells the page why.
    fn stop_keeping(&self, why: &str) {
        if self.keep.replace(false) {
            report_notice(
                &self.progress,
                &format!(
                    "this model is not kept whole for the next visit: {why}; it loads now, and what was not kept \
                     downloads again next time"
                ),
            );
        }
    }

    /// Before the first download of a shard: whether the quota can hold what is left to download (else the model
    /// loads uncached, with a notice).
    async fn check_room(&self) {
        if self.keep.get() && !self.room_checked.replace(true) {
            if let Some(why) = no_room_for(self.total.get() - self.loaded.get()).await {
                self.stop_keeping(&why);
            }
        }
    }

    /// Caches a checked file; a refused write (a full storage) stops caching, with a notice, and the load goes on.
    async fn keep(&self, cache: &web_sys::Cache, file: &str, bytes: &[u8]) {
        if !self.keep.get() {
            return;
        }
        if let Err(why) = cache_put(cache, &self.url(file), bytes).await {
            self.stop_keeping(&format!("the browser refused to store {file} ({why})"));
        }
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
                            self.keep(c, file, &b).await;
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
                match verify_shard(index, shard, &bytes) {
                    Ok(()) => {
                        self.loaded.set(self.loaded.get() + bytes.len() as f64);
                        self.report(shard, true);
                        return Ok(bytes);
                    }
                    // Damaged on disk, or a copy of another version of the file: never used.
                    Err(_) => {
                        cache_delete(c, &url).await;
                        report_notice(
                            &self.progress,
                            &format!(
                                "the cached copy of {shard} does not match the sha256 in the model's index (damaged on \
                                 disk, or from another version of the model): it was deleted and is downloaded again"
                            ),
                        );
                    }
                }
            }
            self.check_room().await;
        }
        let bytes = self.fetch(shard, true).await?;
        verify_shard(index, shard, &bytes)?;
        if let Some(c) = &cache {
            self.keep(c, shard, &bytes).await;
        }
        Ok(bytes)
    }
}
