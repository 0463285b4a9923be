//! `hf://` repos in the browser: the repo's revision resolved to a commit, a pipeline's components found from its
//! `model_index.json`, each component's weights read by HTTP Range from the Hub's resolve URLs (followed to its
//! CDN), and the fp16 tensors kept in Cache Storage under endpoint + repo + commit + path.

use super::Fetch;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::hub::HubLocation;
use crate::loader::{from_single_with, single_location, Planned};
use crate::model::GpuWeights;
use crate::weights::diffusers::{Arch, Pipeline, MODEL_INDEX, WEIGHT_FILES};
use crate::weights::single::SingleOptions;
use crate::weights::url::{cache_get, cache_put, open_cache, CachedRange, RangeUrl, TensorCache, CACHE_NAME};
use crate::weights::ModelIndex;
use std::collections::BTreeMap;

/// A repo whose revision is resolved: what its files are read and cached under.
pub struct Resolved {
    pub endpoint: String,
    /// The location asked for, its revision replaced by the commit when the Hub told it (the small files'
    /// redirect names it); else the revision as given.
    pub loc: HubLocation,
    /// A diffusers pipeline's DiT and VAE subfolders (from `model_index.json`); `None` for one component.
    pub pipeline: Option<(String, Option<String>)>,
    /// Whether every component loaded so far is kept in Cache Storage (else the resolution is not kept either).
    pub kept: std::cell::Cell<bool>,
}

impl Resolved {
    fn url(&self, path: &str) -> String {
        self.loc.resolve_url(&self.endpoint, &self.loc.path_in_repo(path))
    }

    fn key(&self, component: &str) -> String {
        let l = &self.loc;
        format!("{}|{}|{}|{}|{component}", self.endpoint, l.repo_id(), l.revision, l.subfolder)
    }
}

/// The cache entry of a revision's resolution (for offline visits).
fn ref_url(endpoint: &str, repo: &HubLocation) -> String {
    let key = format!("{endpoint}|{}|{}|{}", repo.repo_id(), repo.revision, repo.subfolder);
    format!("https://refs.dit-wasm.invalid/{}", String::from(js_sys::encode_uri_component(&key)))
}

/// The commit named in a small file's final URL (`/api/resolve-cache/models/OWNER/NAME/COMMIT/...`).
fn commit_in(url: &str, repo: &str) -> Option<String> {
    let at = url.find(&format!("/api/resolve-cache/models/{repo}/"))?;
    let rest = &url[at + "/api/resolve-cache/models/".len() + repo.len() + 1..];
    let commit = rest.split('/').next()?;
    (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())).then(|| commit.to_string())
}

/// Resolves the revision and tells a pipeline from a component by asking for `model_index.json`. Offline (or
/// with the Hub unreachable), the resolution of the last visit is used, from Cache Storage.
pub async fn resolve(repo: &HubLocation, fetch: &Fetch) -> Result<Resolved> {
    let endpoint = fetch.hub_endpoint.trim_end_matches('/').to_string();
    let mut r = Resolved { endpoint: endpoint.clone(), loc: repo.clone(), pipeline: None, kept: true.into() };
    let probe = RangeUrl::new(&r.url(MODEL_INDEX), fetch.timeout_ms, None);
    match probe.get_small(probe.url()).await {
        Ok(found) => {
            if let Some((bytes, final_url)) = &found {
                let what = format!("hf://{}/{}", repo.repo_id(), repo.path_in_repo(MODEL_INDEX));
                let p = Pipeline::parse(&what, bytes)?;
                r.pipeline = Some((p.subfolder(&what, Arch::Dit)?.to_string(), p.vae.clone()));
                if let Some(c) = commit_in(final_url, &repo.repo_id()) {
                    r.loc.revision = c;
                }
            }
            Ok(r)
        }
        Err(e @ Error::Download { .. }) => {
            let cache = if fetch.cache { open_cache(CACHE_NAME).await } else { None };
            let Some(c) = &cache else { return Err(e) };
            let Some(entry) = cache_get(c, &ref_url(&endpoint, repo)).await else { return Err(e) };
            let v: serde_json::Value = serde_json::from_slice(&entry).map_err(|_| e)?;
            r.loc.revision = v["commit"].as_str().unwrap_or(&repo.revision).to_string();
            r.pipeline = serde_json::from_value(v["pipeline"].clone()).unwrap_or(None);
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

/// Keeps the resolution of `repo` for offline visits, once its models loaded and were kept (a failed or
/// uncached load keeps nothing).
pub async fn remember(repo: &HubLocation, r: &Resolved, fetch: &Fetch) {
    if !fetch.cache || !r.kept.get() {
        return;
    }
    if let Some(c) = open_cache(CACHE_NAME).await {
        let entry = serde_json::json!({ "commit": r.loc.revision, "pipeline": r.pipeline });
        let _ = cache_put(&c, &ref_url(&r.endpoint, repo), entry.to_string().as_bytes()).await;
    }
}

/// The weights of one checkpoint file of a repo, `hf://OWNER/NAME[@REVISION]/PATH#FRAGMENT` (the fragment as for
/// single files: `arch=sit`, `heads=N`): from Cache Storage when a whole copy is there (kept under the revision's
/// commit and the location's fragment, as the fragment changes what is loaded), else read by ranges from the file's
/// resolve URL and cached as the tensors arrive.
pub async fn load_file(
    gpu: &Gpu,
    location: &str,
    fetch: &Fetch,
    planned: Option<Planned>,
) -> Result<(ModelIndex, GpuWeights)> {
    let (hub_part, opts) = single_location(gpu, location, planned)?;
    let asked = HubLocation::parse(hub_part)?;
    let file = asked.subfolder.rsplit('/').next().unwrap_or("").to_string();
    let fragment = location.split_once('#').map(|(_, f)| f).unwrap_or("");
    let endpoint = fetch.hub_endpoint.trim_end_matches('/').to_string();
    let mut repo = Resolved { endpoint, loc: asked.clone(), pipeline: None, kept: true.into() };
    if let Some(commit) = file_commit(&repo, fetch).await {
        repo.loc.revision = commit;
    }
    let cache = if fetch.cache { TensorCache::open(&repo.key(&format!("#{fragment}"))).await } else { None };
    if let Some(c) = &cache {
        if let Some(found) = cached(gpu, c, fetch).await? {
            return Ok(found);
        }
        c.set_file(&file);
    }
    let src = RangeUrl::new(&repo.url(""), fetch.timeout_ms, fetch.on_progress.clone());
    let (loaded, kept) = read_caching(gpu, &src, &opts, cache.as_ref(), fetch).await?;
    repo.kept.set(kept);
    remember(&asked, &repo, fetch).await;
    Ok(loaded)
}

/// The commit that a one-file location's revision names: the Hub redirects a small file of the repo to a URL that
/// names it (as for `model_index.json`), and every Hub repo holds `.gitattributes`. Offline (or with the Hub
/// unreachable), the commit of the last visit. `None` when neither tells; the file is then cached under the
/// revision's name.
async fn file_commit(r: &Resolved, fetch: &Fetch) -> Option<String> {
    if r.loc.revision.len() == 40 && r.loc.revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let probe = RangeUrl::new(&r.loc.resolve_url(&r.endpoint, ".gitattributes"), fetch.timeout_ms, None);
    match probe.get_small(probe.url()).await {
        Ok(Some((_, final_url))) => commit_in(&final_url, &r.loc.repo_id()),
        Ok(None) => None,
        // The file's own read reports a gated or missing repo; only an unreachable Hub falls back to the last visit.
        Err(Error::Download { .. }) if fetch.cache => {
            let c = open_cache(CACHE_NAME).await?;
            let entry = cache_get(&c, &ref_url(&r.endpoint, &r.loc)).await?;
            let v: serde_json::Value = serde_json::from_slice(&entry).ok()?;
            v["commit"].as_str().map(str::to_string)
        }
        Err(_) => None,
    }
}

/// The weights of one component (`transformer`, `vae`, or the repo itself): from Cache Storage when a whole
/// copy is there, else read by ranges from `diffusion_pytorch_model.safetensors` (or `.bin`), cached as they
/// arrive; nothing stays cached when the load fails.
pub async fn load_component(
    gpu: &Gpu,
    repo: &Resolved,
    component: Option<&str>,
    fetch: &Fetch,
    planned: Option<Planned>,
) -> Result<(ModelIndex, GpuWeights)> {
    let component = component.unwrap_or("");
    let opts = SingleOptions {
        before_tensors: planned.map(|p| p.before_tensors(gpu)).unwrap_or_default(),
        ..SingleOptions::default()
    };
    let cache = if fetch.cache { TensorCache::open(&repo.key(component)).await } else { None };
    if let Some(c) = &cache {
        if let Some(found) = cached(gpu, c, fetch).await? {
            return Ok(found);
        }
    }
    for file in WEIGHT_FILES {
        let path = if component.is_empty() { file.to_string() } else { format!("{component}/{file}") };
        let src = RangeUrl::new(&repo.url(&path), fetch.timeout_ms, fetch.on_progress.clone());
        if let Some(c) = &cache {
            c.set_file(file);
        }
        match read_caching(gpu, &src, &opts, cache.as_ref(), fetch).await {
            Ok((loaded, kept)) => {
                repo.kept.set(repo.kept.get() && kept);
                return Ok(loaded);
            }
            // The next weight file name, when this one is not there.
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let dir: Vec<&str> = [repo.loc.subfolder.as_str(), component].into_iter().filter(|s| !s.is_empty()).collect();
    let dir = if dir.is_empty() { String::new() } else { format!("{}/", dir.join("/")) };
    Err(Error::NotFound {
        url: format!(
            "hf://{}@{}/{dir}diffusion_pytorch_model.{{safetensors,bin}}",
            repo.loc.repo_id(),
            repo.loc.revision
        ),
    })
}

/// The weights kept whole in `cache`, if they are all there.
async fn cached(gpu: &Gpu, cache: &TensorCache, fetch: &Fetch) -> Result<Option<(ModelIndex, GpuWeights)>> {
    let mut map = BTreeMap::new();
    let index = cache
        .load(&fetch.on_progress, |name, shape, bytes| {
            map.insert(name.to_string(), Tensor::from_f16_bytes(gpu, name, shape, bytes)?);
            Ok(())
        })
        .await?;
    Ok(index.map(|i| (i, GpuWeights::new(map))))
}

/// Reads one file by ranges with `opts`, each checked tensor put into `cache` as it arrives: the entry is committed
/// when the load succeeds (with whether it was kept) and deleted when it fails.
async fn read_caching(
    gpu: &Gpu,
    src: &RangeUrl,
    opts: &SingleOptions,
    cache: Option<&TensorCache>,
    fetch: &Fetch,
) -> Result<((ModelIndex, GpuWeights), bool)> {
    let ranged = CachedRange::new(src, cache);
    let mut shapes = vec![];
    let on_tensor = |name: &str, shape: &[usize], bytes: &[u8]| {
        if let Some(c) = cache {
            c.put(name, bytes);
        }
        shapes.push((name.to_string(), shape.to_vec()));
    };
    match from_single_with(gpu, &ranged, opts, |loaded, total| src.report(loaded, total), on_tensor).await {
        Ok((index, w)) => {
            let kept = match cache {
                Some(c) => c.commit(&index, shapes, &fetch.on_progress).await,
                None => false,
            };
            Ok(((index, w), kept))
        }
        Err(e) => {
            if let Some(c) = cache {
                c.discard().await;
            }
            Err(e)
        }
    }
}
