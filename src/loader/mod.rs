//! Location in, checked config and weights on the GPU out: the one loading path of the `dit` CLI and the browser API.
//! A location is a model directory written by `dit convert` (a folder natively, a URL in the browser), one checkpoint
//! read by byte ranges (`weights::single`: `.safetensors`, or a PyTorch `.bin` / `.pt`; `#heads=`, `&input_size=`,
//! `#sha256=`), or natively a diffusers folder (a pipeline or one component, `weights::diffusers`).
//! Every tensor is verified before it reaches the GPU, and the model's kind and config are checked before its graph
//! is built.

use crate::arch::{DitConfig, VaeConfig};
use crate::error::{Error, Result};
use crate::gpu::{AdapterReport, Gpu, Tensor};
use crate::model::{Dit, GpuWeights, Vae};
#[cfg(not(target_arch = "wasm32"))]
use crate::weights::diffusers::Arch;
use crate::weights::single::{RangeSource, SingleOptions};
use crate::weights::{self, ModelIndex, ModelKind, Source};
use std::collections::BTreeMap;

#[cfg(target_arch = "wasm32")]
mod hub_web;

/// What a model is about to be planned at: checked against the device's storage binding limit as soon as its config
/// is known, before any of its weights are read or fetched, so that a model that cannot run on this device is refused
/// with the tensor and the limit ([`Error::Limit`]) rather than after a download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planned {
    /// A DiT at its own latent size, `batch` samples per forward ([`FIRST_BATCH`]: one image with guidance).
    Dit { batch: usize },
    /// A VAE decoder at latent side `latent`.
    Vae { latent: usize },
}

/// The batch of the first plan the browser's sampler makes (one image with guidance, at load).
pub const FIRST_BATCH: usize = 2;

impl Planned {
    /// Checks the model `index` describes against the device's limits ([`Dit::check_fit`], [`Vae::check_fit`]). A
    /// model of another kind, or a config that does not validate, passes here: that is refused with its location
    /// where the config is read.
    pub fn check(self, report: &AdapterReport, index: &ModelIndex) -> Result<()> {
        match (self, index.metadata.kind) {
            (Planned::Dit { batch }, ModelKind::Dit) => match dit_config(index, "") {
                Ok(cfg) => Dit::check_fit(report, &cfg, batch, cfg.input_size),
                Err(_) => Ok(()),
            },
            (Planned::Vae { latent }, ModelKind::VaeDecoder) => match vae_config(index, "") {
                Ok(cfg) => Vae::check_fit(report, &cfg, latent, latent),
                Err(_) => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// [`Planned::check`] as a single-file read's check before its tensor data.
    pub fn before_tensors(self, gpu: &Gpu) -> weights::single::BeforeTensors {
        let report = gpu.report.clone();
        weights::single::BeforeTensors(Some(std::rc::Rc::new(move |index: &ModelIndex| self.check(&report, index))))
    }
}

/// Verifies and uploads every tensor of a model directory, one shard in memory at a time.
pub async fn from_dir<S: Source>(gpu: &Gpu, src: &S) -> Result<(ModelIndex, GpuWeights)> {
    let index = weights::read_index(src).await?;
    from_index(gpu, src, index).await
}

/// [`from_dir`] with the index already read (and checked: [`Planned::check`]).
pub async fn from_index<S: Source>(gpu: &Gpu, src: &S, index: ModelIndex) -> Result<(ModelIndex, GpuWeights)> {
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
    load_at_planned(gpu, path, want, None).await
}

/// [`load_at`], checking `planned` once the model's config is known and before its weights are read.
#[cfg(not(target_arch = "wasm32"))]
pub async fn load_at_planned(
    gpu: &Gpu,
    path: &std::path::Path,
    want: Arch,
    planned: Option<Planned>,
) -> Result<(ModelIndex, GpuWeights)> {
    let path = resolve_path(&crate::hub::local_location(path)?, Some(want))?;
    let s = path.to_string_lossy();
    if path.is_file() || weights::single::is_single_file(&s) {
        let (file, mut opts) = weights::single::parse_location(&s)?;
        opts.before_tensors = planned.map(|p| p.before_tensors(gpu)).unwrap_or_default();
        from_single(gpu, &weights::single::FileRange(file.into()), &opts, |_, _| {}).await
    } else {
        let src = weights::DirSource(path.to_path_buf());
        let index = weights::read_index(&src).await?;
        if let Some(p) = planned {
            p.check(&gpu.report, &index)?;
        }
        from_index(gpu, &src, index).await
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
    dit_at_planned(gpu, path, None).await
}

/// A VAE decoder from a path ([`load_at`]; a pipeline gives its `vae/`).
#[cfg(not(target_arch = "wasm32"))]
pub async fn vae_at(gpu: &Gpu, path: &std::path::Path) -> Result<Vae> {
    vae_at_planned(gpu, path, None).await
}

/// [`dit_at`], the DiT checked against the device's limits as `planned` before its weights are read.
#[cfg(not(target_arch = "wasm32"))]
pub async fn dit_at_planned(gpu: &Gpu, path: &std::path::Path, planned: Option<Planned>) -> Result<(ModelIndex, Dit)> {
    let (index, w) = load_at_planned(gpu, path, Arch::Dit, planned).await?;
    let cfg = dit_config(&index, &path.display().to_string())?;
    Ok((index, Dit::load(gpu, cfg, w)?))
}

/// [`vae_at`], the VAE checked against the device's limits as `planned` before its weights are read.
#[cfg(not(target_arch = "wasm32"))]
pub async fn vae_at_planned(gpu: &Gpu, path: &std::path::Path, planned: Option<Planned>) -> Result<Vae> {
    let (index, w) = load_at_planned(gpu, path, Arch::Vae, planned).await?;
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
    load_url_planned(gpu, base, fetch, None).await
}

/// [`load_url`], checking `planned` once the model's config is known and before any of its weights are fetched.
#[cfg(target_arch = "wasm32")]
async fn load_url_planned(
    gpu: &Gpu,
    base: &str,
    fetch: &Fetch,
    planned: Option<Planned>,
) -> Result<(ModelIndex, GpuWeights)> {
    use crate::weights::url::RangeUrl;
    if weights::single::is_single_file(base) {
        let (url, mut opts) = weights::single::parse_location(base)?;
        opts.before_tensors = planned.map(|p| p.before_tensors(gpu)).unwrap_or_default();
        let src = RangeUrl::new(url, fetch.timeout_ms, fetch.on_progress.clone());
        return from_single(gpu, &src, &opts, |loaded, total| src.report(loaded, total)).await;
    }
    let (src, index) = dir_index(base, fetch).await?;
    if let Some(p) = planned {
        p.check(&gpu.report, &index)?;
    }
    from_index(gpu, &src, index).await
}

/// A model directory's source and its index (read, not yet its shards).
#[cfg(target_arch = "wasm32")]
async fn dir_index(base: &str, fetch: &Fetch) -> Result<(crate::weights::url::UrlSource, ModelIndex)> {
    let src = crate::weights::url::UrlSource::new(base, fetch.cache, fetch.timeout_ms, fetch.on_progress.clone());
    let index = weights::read_index(&src).await?;
    Ok((src, index))
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
/// absent for a Hub pipeline (its `vae/`). Each model is checked against the device's limits ([`Planned`]: the DiT
/// for one guided image, the VAE at the DiT's latent size) once its config is known and before its weights are
/// fetched; when both are model directories, both indexes are read and checked before any shard.
#[cfg(target_arch = "wasm32")]
pub async fn models_from_urls(
    gpu: &Gpu,
    model: &str,
    vae: Option<&str>,
    fetch: &Fetch,
) -> Result<(ModelIndex, Dit, Vae)> {
    let dit_planned = Some(Planned::Dit { batch: FIRST_BATCH });
    let is_dir = |loc: &str| !crate::hub::is_hub_location(loc) && !weights::single::is_single_file(loc);
    // One checkpoint file in a Hub repo (`hf://OWNER/NAME[@REVISION]/FILE.pt#arch=sit&heads=N`, as the SiT release):
    // read by ranges from its resolve URL, with the single-file fragment; the VAE comes from its own location.
    if crate::hub::is_hub_location(model) && weights::single::is_single_file(model) {
        let (index, w) = hub_web::load_file(gpu, model, fetch, dit_planned).await?;
        let dit = Dit::load(gpu, dit_config(&index, model)?, w)?;
        let Some(vae) = vae else {
            return Err(Error::input(format!("{model} is one checkpoint file: give the VAE's location too")));
        };
        let latent = dit.cfg.input_size;
        return Ok((index, dit, vae_at_url(gpu, vae, fetch, latent).await?));
    }
    let (dit_index, dit) = match crate::hub::is_hub_location(model) {
        true => {
            let asked = crate::hub::HubLocation::parse(model)?;
            let repo = hub_web::resolve(&asked, fetch).await?;
            let dit_sub = repo.pipeline.as_ref().map(|(dit, _)| dit.clone());
            let (index, w) = hub_web::load_component(gpu, &repo, dit_sub.as_deref(), fetch, dit_planned).await?;
            let cfg = dit_config(&index, model)?;
            let dit = Dit::load(gpu, cfg, w)?;
            let latent = dit.cfg.input_size;
            let vae = match vae {
                Some(v) => vae_at_url(gpu, v, fetch, latent).await?,
                None if repo.pipeline.is_some() => {
                    let Some(vae_sub) = repo.pipeline.as_ref().and_then(|(_, vae)| vae.clone()) else {
                        return Err(Error::input(format!(
                            "{model}: the pipeline lists no `vae`; give the VAE's location"
                        )));
                    };
                    let planned = Some(Planned::Vae { latent });
                    let (index, w) = hub_web::load_component(gpu, &repo, Some(&vae_sub), fetch, planned).await?;
                    Vae::load(gpu, vae_config(&index, &format!("{model} (vae/)"))?, w)?
                }
                None => {
                    return Err(Error::input(format!(
                        "{model} is one model, not a pipeline with a vae/ folder: give the VAE's location too"
                    )))
                }
            };
            hub_web::remember(&asked, &repo, fetch).await;
            return Ok((index, dit, vae));
        }
        // A model directory: its index, and the VAE's when that is a directory too, checked before any shard.
        false if is_dir(model) => {
            let (src, index) = dir_index(model, fetch).await?;
            Planned::Dit { batch: FIRST_BATCH }.check(&gpu.report, &index)?;
            let cfg = dit_config(&index, model)?;
            let vae_dir = match vae {
                Some(v) if is_dir(v) => {
                    let (vae_src, vae_index) = dir_index(v, fetch).await?;
                    Planned::Vae { latent: cfg.input_size }.check(&gpu.report, &vae_index)?;
                    Some((v, vae_src, vae_index))
                }
                _ => None,
            };
            let (index, w) = from_index(gpu, &src, index).await?;
            let dit = Dit::load(gpu, cfg, w)?;
            if let Some((v, vae_src, vae_index)) = vae_dir {
                let (vae_index, w) = from_index(gpu, &vae_src, vae_index).await?;
                let vae = Vae::load(gpu, vae_config(&vae_index, v)?, w)?;
                return Ok((index, dit, vae));
            }
            (index, dit)
        }
        false => {
            let (index, w) = load_url_planned(gpu, model, fetch, dit_planned).await?;
            let cfg = dit_config(&index, model)?;
            (index, Dit::load(gpu, cfg, w)?)
        }
    };
    let Some(vae) = vae else {
        return Err(Error::input(format!("{model}: a VAE location is needed (only a Hub pipeline brings its own)")));
    };
    let latent = dit.cfg.input_size;
    Ok((dit_index, dit, vae_at_url(gpu, vae, fetch, latent).await?))
}

/// A VAE decoder from a URL or an `hf://` repo (a pipeline's `vae/`, or one component), checked for a decode at
/// latent side `latent` before its weights are fetched.
#[cfg(target_arch = "wasm32")]
async fn vae_at_url(gpu: &Gpu, location: &str, fetch: &Fetch, latent: usize) -> Result<Vae> {
    let planned = Some(Planned::Vae { latent });
    match crate::hub::is_hub_location(location) {
        true => {
            let asked = crate::hub::HubLocation::parse(location)?;
            let repo = hub_web::resolve(&asked, fetch).await?;
            let vae_sub = match &repo.pipeline {
                Some((_, Some(vae))) => Some(vae.clone()),
                Some((_, None)) => {
                    return Err(Error::input(format!("{location}: the pipeline lists no `vae` component")));
                }
                None => None,
            };
            let (index, w) = hub_web::load_component(gpu, &repo, vae_sub.as_deref(), fetch, planned).await?;
            let vae = Vae::load(gpu, vae_config(&index, location)?, w)?;
            hub_web::remember(&asked, &repo, fetch).await;
            Ok(vae)
        }
        false => {
            let (index, w) = load_url_planned(gpu, location, fetch, planned).await?;
            Vae::load(gpu, vae_config(&index, location)?, w)
        }
    }
}
