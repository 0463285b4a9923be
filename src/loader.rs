//! Location in, checked config and weights on the GPU out: the one loading path of the `dit` CLI and the browser API.
//! A location is a model directory written by `dit convert` (a folder natively, a URL in the browser), one checkpoint
//! read by byte ranges (`weights::single`: `.safetensors`, or a PyTorch `.bin` / `.pt`; `#heads=`, `&input_size=`,
//! `#sha256=`), or natively a diffusers folder (a pipeline or one component, `weights::diffusers`).
//! Every tensor is verified before it reaches the GPU, and the model's kind and config are checked before its graph
//! is built.

use crate::arch::{DitConfig, VaeConfig};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::{Dit, GpuWeights, Vae};
#[cfg(not(target_arch = "wasm32"))]
use crate::weights::diffusers::Arch;
use crate::weights::single::{RangeSource, SingleOptions};
use crate::weights::{self, ModelIndex, ModelKind, Source};
use std::collections::BTreeMap;

/// Verifies and uploads every tensor of a model directory, one shard in memory at a time.
pub async fn from_dir<S: Source>(gpu: &Gpu, src: &S) -> Result<(ModelIndex, GpuWeights)> {
    let index = weights::read_index(src).await?;
    let mut map = BTreeMap::new();
    weights::for_each_tensor(src, &index, |name, shape, bytes| {
        map.insert(name.to_string(), Tensor::from_f16_bytes(gpu, name, shape, bytes)?);
        Ok(())
    })
    .await?;
    Ok((index, GpuWeights::new(map)))
}

/// Loads the weights of one `.safetensors` checkpoint read by byte ranges (see `weights::single`), checking that
/// every tensor of the model is there with its shape.
pub async fn from_single<R: RangeSource>(
    gpu: &Gpu,
    src: &R,
    opts: &SingleOptions,
    on_progress: impl FnMut(u64, u64),
) -> Result<(ModelIndex, GpuWeights)> {
    from_single_with(gpu, src, opts, on_progress, |_, _, _| {}).await
}

/// [`from_single`], also handing each checked fp16 tensor to `also` (name, shape, bytes) once it is on the GPU.
pub async fn from_single_with<R: RangeSource>(
    gpu: &Gpu,
    src: &R,
    opts: &SingleOptions,
    on_progress: impl FnMut(u64, u64),
    mut also: impl FnMut(&str, &[usize], &[u8]),
) -> Result<(ModelIndex, GpuWeights)> {
    let mut map = BTreeMap::new();
    let index = weights::single::load_single(
        src,
        opts,
        |name, shape, bytes| {
            map.insert(name.to_string(), Tensor::from_f16_bytes(gpu, name, shape, bytes)?);
            also(name, shape, bytes);
            Ok(())
        },
        on_progress,
    )
    .await?;
    Ok((index, GpuWeights::new(map)))
}

/// The config of a loaded index of `kind` (`name` in messages; `what` names the location).
fn config<C: serde::de::DeserializeOwned>(index: &ModelIndex, kind: ModelKind, name: &str, what: &str) -> Result<C> {
    if index.metadata.kind != kind {
        return Err(Error::input(format!("{what}: holds a {:?} model, not a {name}", index.metadata.kind)));
    }
    serde_json::from_value(index.metadata.config.clone())
        .map_err(|e| Error::format(weights::INDEX_FILE, format!("bad {name} config ({e})")))
}

/// The DiT config of a loaded index (`what` names the location in errors): the kind is checked and the config
/// validated against what the kernels run.
pub fn dit_config(index: &ModelIndex, what: &str) -> Result<DitConfig> {
    let cfg: DitConfig = config(index, ModelKind::Dit, "DiT", what)?;
    cfg.validate()?;
    Ok(cfg)
}

/// The VAE decoder config of a loaded index, checked as [`dit_config`] does.
pub fn vae_config(index: &ModelIndex, what: &str) -> Result<VaeConfig> {
    let cfg: VaeConfig = config(index, ModelKind::VaeDecoder, "VAE decoder", what)?;
    cfg.validate()?;
    Ok(cfg)
}

/// The file or model directory that `path` stands for natively, for a model of kind `want`:
/// - a model directory (written by `dit convert`) or a checkpoint file: itself (`FILE#heads=N` too);
/// - a diffusers component folder (`config.json` + `diffusion_pytorch_model.{safetensors,bin}`): its weights file,
///   after its config is checked to describe `want` (when given);
/// - a diffusers pipeline folder (`model_index.json`): the component of `want` (`transformer/` for a DiT, `vae/`),
///   resolved as above; a pipeline needs `want`.
///
/// The rules are `weights::diffusers`'s, shared with the URL loaders; only the listing of files is native here.
#[cfg(not(target_arch = "wasm32"))]
pub fn resolve_path(path: &std::path::Path, want: Option<Arch>) -> Result<std::path::PathBuf> {
    use crate::weights::diffusers::{self, Folder, Pipeline};
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let names = list_files(path)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match diffusers::folder(&names) {
        Folder::ModelDir | Folder::Unknown => Ok(path.to_path_buf()),
        Folder::Component { weights } => {
            let config = path.join(diffusers::CONFIG);
            let bytes = std::fs::read(&config).map_err(|e| Error::io(&config, e))?;
            diffusers::classify(&config.display().to_string(), &bytes, want)?;
            Ok(path.join(weights))
        }
        Folder::Pipeline => {
            let index = path.join(diffusers::MODEL_INDEX);
            let what = index.display().to_string();
            let bytes = std::fs::read(&index).map_err(|e| Error::io(&index, e))?;
            let Some(want) = want else {
                return Err(Error::input(format!(
                    "{}: a diffusers pipeline; name one of its components",
                    path.display()
                )));
            };
            let sub = path.join(Pipeline::parse(&what, &bytes)?.subfolder(&what, want)?);
            let names = if sub.is_dir() { list_files(&sub)? } else { vec![] };
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            match diffusers::folder(&names) {
                Folder::Component { .. } | Folder::ModelDir => resolve_path(&sub, Some(want)),
                _ => Err(Error::format(
                    sub.display().to_string(),
                    format!(
                        "the pipeline's component folder has no {} and {}",
                        diffusers::CONFIG,
                        diffusers::WEIGHT_FILES.join(" or ")
                    ),
                )),
            }
        }
    }
}

/// The components of a diffusers pipeline folder this project runs (its DiT, its VAE when listed), to resolve one at a
/// time with [`resolve_path`]; `None` when `path` is not a pipeline.
#[cfg(not(target_arch = "wasm32"))]
pub fn pipeline_components(path: &std::path::Path) -> Result<Option<Vec<Arch>>> {
    use crate::weights::diffusers::{Pipeline, MODEL_INDEX};
    let index = path.join(MODEL_INDEX);
    if !index.is_file() {
        return Ok(None);
    }
    let p = Pipeline::parse(&index.display().to_string(), &std::fs::read(&index).map_err(|e| Error::io(&index, e))?)?;
    let mut out = vec![Arch::Dit];
    if p.vae.is_some() {
        out.push(Arch::Vae);
    }
    Ok(Some(out))
}

#[cfg(not(target_arch = "wasm32"))]
fn list_files(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut names = vec![];
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Loads the weights at a path ([`resolve_path`]): a model directory, one checkpoint used as it is (`.safetensors`,
/// or a PyTorch `.bin` / `.pt`, read by byte ranges), or a diffusers folder (the component of kind `want` of a
/// pipeline); a `hf://` location is its folder in the Hub's cache, downloaded when it is not there
/// ([`crate::hub::local_location`]).
#[cfg(not(target_arch = "wasm32"))]
pub async fn load_at(gpu: &Gpu, path: &std::path::Path, want: Arch) -> Result<(ModelIndex, GpuWeights)> {
    let path = resolve_path(&crate::hub::local_location(path)?, Some(want))?;
    let s = path.to_string_lossy();
    if path.is_file() || weights::single::is_single_file(&s) {
        let (file, opts) = weights::single::parse_location(&s)?;
        from_single(gpu, &weights::single::FileRange(file.into()), &opts, |_, _| {}).await
    } else {
        from_dir(gpu, &weights::DirSource(path.to_path_buf())).await
    }
}

/// Loads the DiT weights at a path ([`load_at`]; a pipeline gives its transformer).
#[cfg(not(target_arch = "wasm32"))]
pub async fn load_path(gpu: &Gpu, path: &std::path::Path) -> Result<(ModelIndex, GpuWeights)> {
    load_at(gpu, path, Arch::Dit).await
}

/// A DiT from a path ([`load_at`]), with its index.
#[cfg(not(target_arch = "wasm32"))]
pub async fn dit_at(gpu: &Gpu, path: &std::path::Path) -> Result<(ModelIndex, Dit)> {
    let (index, w) = load_at(gpu, path, Arch::Dit).await?;
    let cfg = dit_config(&index, &path.display().to_string())?;
    Ok((index, Dit::load(gpu, cfg, w)?))
}

/// A VAE decoder from a path ([`load_at`]; a pipeline gives its `vae/`).
#[cfg(not(target_arch = "wasm32"))]
pub async fn vae_at(gpu: &Gpu, path: &std::path::Path) -> Result<Vae> {
    let (index, w) = load_at(gpu, path, Arch::Vae).await?;
    Vae::load(gpu, vae_config(&index, &path.display().to_string())?, w)
}

/// How the browser fetches: Cache Storage on or off, the stall timeout, the JS progress callback, and the Hub
/// endpoint that `hf://` locations resolve against.
#[cfg(target_arch = "wasm32")]
pub struct Fetch {
    pub cache: bool,
    pub timeout_ms: u32,
    pub on_progress: Option<js_sys::Function>,
    pub hub_endpoint: String,
}

/// Loads the weights at a URL: a model directory (shards kept in Cache Storage) or one `.safetensors` checkpoint
/// read by HTTP Range requests.
#[cfg(target_arch = "wasm32")]
pub async fn load_url(gpu: &Gpu, base: &str, fetch: &Fetch) -> Result<(ModelIndex, GpuWeights)> {
    use crate::weights::url::{RangeUrl, UrlSource};
    if weights::single::is_single_file(base) {
        let (url, opts) = weights::single::parse_location(base)?;
        let src = RangeUrl::new(url, fetch.timeout_ms, fetch.on_progress.clone());
        return from_single(gpu, &src, &opts, |loaded, total| src.report(loaded, total)).await;
    }
    let src = UrlSource::new(base, fetch.cache, fetch.timeout_ms, fetch.on_progress.clone());
    from_dir(gpu, &src).await
}

/// A DiT from a URL ([`load_url`]), with its index.
#[cfg(target_arch = "wasm32")]
pub async fn dit_from_url(gpu: &Gpu, base: &str, fetch: &Fetch) -> Result<(ModelIndex, Dit)> {
    let (index, w) = load_url(gpu, base, fetch).await?;
    let cfg = dit_config(&index, base)?;
    Ok((index, Dit::load(gpu, cfg, w)?))
}

/// A VAE decoder from a URL ([`load_url`]).
#[cfg(target_arch = "wasm32")]
pub async fn vae_from_url(gpu: &Gpu, base: &str, fetch: &Fetch) -> Result<Vae> {
    let (index, w) = load_url(gpu, base, fetch).await?;
    Vae::load(gpu, vae_config(&index, base)?, w)
}

/// The DiT and the VAE decoder of a page: `model` is a URL (as [`load_url`]) or an `hf://` repo; `vae` likewise, or
/// absent for a Hub pipeline (its `vae/`).
#[cfg(target_arch = "wasm32")]
pub async fn models_from_urls(
    gpu: &Gpu,
    model: &str,
    vae: Option<&str>,
    fetch: &Fetch,
) -> Result<(ModelIndex, Dit, Vae)> {
    // One checkpoint file in a Hub repo (`hf://OWNER/NAME[@REVISION]/FILE.pt#arch=sit&heads=N`, as the SiT release):
    // read by ranges from its resolve URL, with the single-file fragment; the VAE comes from its own location.
    if crate::hub::is_hub_location(model) && weights::single::is_single_file(model) {
        let (index, w) = hub::load_file(gpu, model, fetch).await?;
        let dit = Dit::load(gpu, dit_config(&index, model)?, w)?;
        let Some(vae) = vae else {
            return Err(Error::input(format!("{model} is one checkpoint file: give the VAE's location too")));
        };
        return Ok((index, dit, vae_at_url(gpu, vae, fetch).await?));
    }
    let (dit_index, dit) = match crate::hub::is_hub_location(model) {
        true => {
            let asked = crate::hub::HubLocation::parse(model)?;
            let repo = hub::resolve(&asked, fetch).await?;
            let dit_sub = repo.pipeline.as_ref().map(|(dit, _)| dit.clone());
            let (index, w) = hub::load_component(gpu, &repo, dit_sub.as_deref(), fetch).await?;
            let cfg = dit_config(&index, model)?;
            let dit = Dit::load(gpu, cfg, w)?;
            let vae = match vae {
                Some(v) => vae_at_url(gpu, v, fetch).await?,
                None if repo.pipeline.is_some() => {
                    let Some(vae_sub) = repo.pipeline.as_ref().and_then(|(_, vae)| vae.clone()) else {
                        return Err(Error::input(format!(
                            "{model}: the pipeline lists no `vae`; give the VAE's location"
                        )));
                    };
                    let (index, w) = hub::load_component(gpu, &repo, Some(&vae_sub), fetch).await?;
                    Vae::load(gpu, vae_config(&index, &format!("{model} (vae/)"))?, w)?
                }
                None => {
                    return Err(Error::input(format!(
                        "{model} is one model, not a pipeline with a vae/ folder: give the VAE's location too"
                    )))
                }
            };
            hub::remember(&asked, &repo, fetch).await;
            return Ok((index, dit, vae));
        }
        false => dit_from_url(gpu, model, fetch).await?,
    };
    let Some(vae) = vae else {
        return Err(Error::input(format!("{model}: a VAE location is needed (only a Hub pipeline brings its own)")));
    };
    Ok((dit_index, dit, vae_at_url(gpu, vae, fetch).await?))
}

/// A VAE decoder from a URL or an `hf://` repo (a pipeline's `vae/`, or one component).
#[cfg(target_arch = "wasm32")]
async fn vae_at_url(gpu: &Gpu, location: &str, fetch: &Fetch) -> Result<Vae> {
    match crate::hub::is_hub_location(location) {
        true => {
            let asked = crate::hub::HubLocation::parse(location)?;
            let repo = hub::resolve(&asked, fetch).await?;
            let vae_sub = match &repo.pipeline {
                Some((_, Some(vae))) => Some(vae.clone()),
                Some((_, None)) => {
                    return Err(Error::input(format!("{location}: the pipeline lists no `vae` component")));
                }
                None => None,
            };
            let (index, w) = hub::load_component(gpu, &repo, vae_sub.as_deref(), fetch).await?;
            let vae = Vae::load(gpu, vae_config(&index, location)?, w)?;
            hub::remember(&asked, &repo, fetch).await;
            Ok(vae)
        }
        false => vae_from_url(gpu, location, fetch).await,
    }
}

/// `hf://` repos in the browser: the repo's revision resolved to a commit, a pipeline's components found from its
/// `model_index.json`, each component's weights read by HTTP Range from the Hub's resolve URLs (followed to its
/// CDN), and the fp16 tensors kept in Cache Storage under endpoint + repo + commit + path.
#[cfg(target_arch = "wasm32")]
mod hub {
    use super::{from_single_with, Fetch};
    use crate::error::{Error, Result};
    use crate::gpu::{Gpu, Tensor};
    use crate::hub::HubLocation;
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
            cache_put(&c, &ref_url(&r.endpoint, repo), entry.to_string().as_bytes()).await;
        }
    }

    /// The weights of one checkpoint file of a repo, `hf://OWNER/NAME[@REVISION]/PATH#FRAGMENT` (the fragment as for
    /// single files: `arch=sit`, `heads=N`): from Cache Storage when a whole copy is there (kept under the location
    /// with its fragment, as the fragment changes what is loaded), else read by ranges from the file's resolve URL and
    /// cached as the tensors arrive. The revision is not resolved to a commit here (the file's redirect is followed
    /// by the browser): a revision that moves is cached under its name, so pin a commit to be sure of the files.
    pub async fn load_file(gpu: &Gpu, location: &str, fetch: &Fetch) -> Result<(ModelIndex, GpuWeights)> {
        let (hub_part, opts) = crate::weights::single::parse_location(location)?;
        let loc = HubLocation::parse(hub_part)?;
        let file = loc.subfolder.rsplit('/').next().unwrap_or("").to_string();
        let fragment = location.split_once('#').map(|(_, f)| f).unwrap_or("");
        let endpoint = fetch.hub_endpoint.trim_end_matches('/').to_string();
        let repo = Resolved { endpoint, loc, pipeline: None, kept: true.into() };
        let cache = if fetch.cache { TensorCache::open(&repo.key(&format!("#{fragment}"))).await } else { None };
        if let Some(c) = &cache {
            let mut map = BTreeMap::new();
            let cached = c
                .load(&fetch.on_progress, |name, shape, bytes| {
                    map.insert(name.to_string(), Tensor::from_f16_bytes(gpu, name, shape, bytes)?);
                    Ok(())
                })
                .await?;
            if let Some(index) = cached {
                return Ok((index, GpuWeights::new(map)));
            }
            c.set_file(&file);
        }
        let src = RangeUrl::new(&repo.url(""), fetch.timeout_ms, fetch.on_progress.clone());
        let ranged = CachedRange::new(&src, cache.as_ref());
        let mut shapes = vec![];
        let result = from_single_with(
            gpu,
            &ranged,
            &opts,
            |loaded, total| src.report(loaded, total),
            |name, shape, bytes| {
                if let Some(c) = &cache {
                    c.put(name, bytes);
                }
                shapes.push((name.to_string(), shape.to_vec()));
            },
        )
        .await;
        match result {
            Ok((index, w)) => {
                if let Some(c) = &cache {
                    c.commit(&index, shapes, &fetch.on_progress).await;
                }
                Ok((index, w))
            }
            Err(e) => {
                if let Some(c) = &cache {
                    c.discard().await;
                }
                Err(e)
            }
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
    ) -> Result<(ModelIndex, GpuWeights)> {
        let component = component.unwrap_or("");
        let cache = if fetch.cache { TensorCache::open(&repo.key(component)).await } else { None };
        if let Some(c) = &cache {
            let mut map = BTreeMap::new();
            let cached = c
                .load(&fetch.on_progress, |name, shape, bytes| {
                    map.insert(name.to_string(), Tensor::from_f16_bytes(gpu, name, shape, bytes)?);
                    Ok(())
                })
                .await?;
            if let Some(index) = cached {
                return Ok((index, GpuWeights::new(map)));
            }
        }
        for file in WEIGHT_FILES {
            let path = if component.is_empty() { file.to_string() } else { format!("{component}/{file}") };
            let src = RangeUrl::new(&repo.url(&path), fetch.timeout_ms, fetch.on_progress.clone());
            if let Some(c) = &cache {
                c.set_file(file);
            }
            let ranged = CachedRange::new(&src, cache.as_ref());
            let mut shapes = vec![];
            let result = from_single_with(
                gpu,
                &ranged,
                &SingleOptions::default(),
                |loaded, total| src.report(loaded, total),
                |name, shape, bytes| {
                    if let Some(c) = &cache {
                        c.put(name, bytes);
                    }
                    shapes.push((name.to_string(), shape.to_vec()));
                },
            )
            .await;
            match result {
                Ok((index, w)) => {
                    let kept = match &cache {
                        Some(c) => c.commit(&index, shapes, &fetch.on_progress).await,
                        None => false,
                    };
                    repo.kept.set(repo.kept.get() && kept);
                    return Ok((index, w));
                }
                Err(e) => {
                    if let Some(c) = &cache {
                        c.discard().await;
                    }
                    match e {
                        Error::NotFound { .. } => {}
                        e => return Err(e),
                    }
                }
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
}
