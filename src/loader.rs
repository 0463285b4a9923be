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
    let mut map = BTreeMap::new();
    let index = weights::single::load_single(
        src,
        opts,
        |name, shape, bytes| {
            map.insert(name.to_string(), Tensor::from_f16_bytes(gpu, name, shape, bytes)?);
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

/// How the browser fetches: Cache Storage on or off, the stall timeout, and the JS progress callback.
#[cfg(target_arch = "wasm32")]
pub struct Fetch {
    pub cache: bool,
    pub timeout_ms: u32,
    pub on_progress: Option<js_sys::Function>,
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
