//! The fp16 tensors of a model read from one file, kept in Cache Storage for the next visit and for offline use.

use super::ranged::RangeUrl;
use super::*;
use sha2::{Digest, Sha256};

/// The fp16 tensors of one model read from a single file (a Hub repo's component), kept in Cache Storage so that the
/// next visit downloads nothing and works offline. Entries are keyed by a caller's key that names where the file
/// came from (for the Hub: endpoint, repo, resolved commit and path) plus the file and tensor names, so another
/// revision or file never reads them. A tensor is written only after the reader has checked it (shape, finite
/// values), and the manifest (the model's index, its tensor list and each tensor's sha256) is written last, once every
/// tensor is stored: a model without its manifest does not count as cached, and a failed load deletes what it wrote.
/// Reading it back checks every tensor against the manifest's sha256; a mismatch, a missing tensor or a manifest of
/// another layout deletes the model's entries, and it is fetched again.
///
/// The hashes are the cache's own: what the Hub publishes (the CDN's `ETag`, the LFS sha256) covers the whole source
/// file, which a load does not read whole (unused tensors are skipped) and rounds to fp16 as it reads, so it cannot
/// vouch for the cached tensors. The download itself is checked by the reader (structure, shapes, finite values), and
/// by the file's digest where the location gives `#sha256=`.
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
    /// The sha256 (hex) of each tensor written by this load, by name, for the manifest.
    hashes: std::cell::RefCell<std::collections::BTreeMap<String, String>>,
    /// Cleared when the storage cannot hold the model (then the load runs uncached).
    enabled: Cell<bool>,
}

/// The layout of the manifest written now. A manifest of another layout (an earlier one had no hashes) or none is
/// not trusted: the model's entries are deleted and it is fetched again.
const MANIFEST_FORMAT: u32 = 2;

/// What the manifest of a cached model records.
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: u32,
    file: String,
    index: ModelIndex,
    tensors: Vec<CachedTensor>,
}

/// One tensor of a manifest: its name, shape and the sha256 (hex) of its fp16 bytes as they were stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedTensor {
    name: String,
    shape: Vec<usize>,
    sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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
            hashes: Default::default(),
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

    /// Hands every cached tensor to `on_tensor` (and reports progress as `cached`) when the whole model is cached
    /// and every tensor matches the sha256 its manifest recorded; `Ok(None)` when it is not (a manifest of another
    /// layout, or a missing or damaged tensor, deletes the model's entries, with a notice, so it is fetched again).
    pub async fn load(
        &self,
        progress: &Option<js_sys::Function>,
        mut on_tensor: impl FnMut(&str, &[usize], &[u8]) -> Result<()>,
    ) -> Result<Option<ModelIndex>> {
        let Some(bytes) = cache_get(&self.cache, &self.manifest_url()).await else { return Ok(None) };
        let m = match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) if m.format == MANIFEST_FORMAT => m,
            _ => {
                self.purge().await;
                report_notice(
                    progress,
                    "a cached model of an older layout (or an unreadable one) was deleted; it is downloaded again",
                );
                return Ok(None);
            }
        };
        let total: f64 = m.tensors.iter().map(|t| (t.shape.iter().product::<usize>() * 2) as f64).sum();
        // Named in progress as the download named it (its URL), so that the page tells the files apart.
        let label = m.index.metadata.extra.get("source").and_then(|v| v.as_str()).unwrap_or(&m.file).to_string();
        let mut loaded = 0.0;
        for CachedTensor { name, shape, sha256 } in &m.tensors {
            let bytes = cache_get(&self.cache, &self.tensor_url(&m.file, name)).await;
            let whole = |b: &Vec<u8>| b.len() == shape.iter().product::<usize>() * 2 && sha256_hex(b) == *sha256;
            let Some(bytes) = bytes.filter(whole) else {
                self.purge().await;
                report_notice(
                    progress,
                    &format!(
                        "the cached copy of {label} failed its check (tensor `{name}` is missing or does not match the \
                         sha256 recorded when it was stored): it was deleted and is downloaded again"
                    ),
                );
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
        self.hashes.borrow_mut().insert(name.to_string(), sha256_hex(bytes));
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
        report_notice(
            progress,
            &format!("this model is not kept for the next visit: {why}; it loads now and downloads again next time"),
        );
    }

    /// Checks, before a download of about `need` bytes of fp16 weights, that the storage quota can hold them
    /// (`navigator.storage.estimate()`); where it cannot, the model runs uncached, with a notice.
    pub async fn ensure_room(&self, need: u64, progress: &Option<js_sys::Function>) {
        if !self.enabled.get() {
            return;
        }
        if let Some(why) = no_room_for(need as f64).await {
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
        let tensors: Option<Vec<CachedTensor>> = {
            let hashes = self.hashes.borrow();
            tensors
                .into_iter()
                .map(|(name, shape)| Some(CachedTensor { sha256: hashes.get(&name)?.clone(), name, shape }))
                .collect()
        };
        let Some(tensors) = tensors else { return false };
        let m = Manifest { format: MANIFEST_FORMAT, file: self.file.borrow().clone(), index: index.clone(), tensors };
        let Ok(json) = serde_json::to_vec(&m) else { return false };
        let arr = Uint8Array::from(json.as_slice());
        let Ok(resp) = web_sys::Response::new_with_opt_buffer_source(Some(&arr)) else { return false };
        if let Err(e) = JsFuture::from(self.cache.put_with_str(&self.manifest_url(), &resp)).await {
            self.disable(progress, &format!("the browser refused to store it ({})", js_err(e))).await;
            return false;
        }
        true
    }

    /// Deletes every entry of this model (its manifest and tensors, whichever load wrote them).
    async fn purge(&self) {
        let prefix = format!("{}/", self.key);
        let Ok(keys) = JsFuture::from(self.cache.keys()).await else { return };
        for req in js_sys::Array::from(&keys).iter() {
            let Some(url) = req.dyn_ref::<web_sys::Request>().map(|r| r.url()) else { continue };
            if url.starts_with(&prefix) {
                cache_delete(&self.cache, &url).await;
            }
        }
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

impl crate::weights::range::RangeSource for CachedRange<'_> {
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
