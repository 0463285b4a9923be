//! One file read by HTTP Range requests that the Hub's CDN answers from another origin, resumed where a connection
//! dropped.

use super::*;

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
    pub(super) url: String,
    timeout_ms: u32,
    pub(super) progress: Option<js_sys::Function>,
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

impl crate::weights::range::RangeSource for RangeUrl {
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
            // A failure that gave up has returned below; a retry waits first.
            if failures > 0 {
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
        crate::weights::range::RangeSource::read_range(self, 0, 1).await?;
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
