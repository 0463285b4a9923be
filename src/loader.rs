//! Location in, checked config and weights on the GPU out: the one loading path of the `dit` CLI and the browser API.
//! A location is a model directory written by `dit convert` (a folder natively, a URL in the browser) or one
//! `.safetensors` checkpoint read by byte ranges (`weights::single`; `#heads=`, `&input_size=`, `#sha256=`).
//! Every tensor is verified before it reaches the GPU, and the model's kind and config are checked before its graph
//! is built.

use crate::arch::{DitConfig, VaeConfig};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::{Dit, GpuWeights, Vae};
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

/// Loads the weights at a path: a model directory, or one `.safetensors` checkpoint used as it is; a `hf://`
/// location is its folder in the Hub's cache, downloaded when it is not there ([`crate::hub::local_location`]).
#[cfg(not(target_arch = "wasm32"))]
pub async fn load_path(gpu: &Gpu, path: &std::path::Path) -> Result<(ModelIndex, GpuWeights)> {
    let path = &crate::hub::local_location(path)?;
    let s = path.to_string_lossy();
    if weights::single::is_single_file(&s) {
        let (file, opts) = weights::single::parse_location(&s)?;
        from_single(gpu, &weights::single::FileRange(file.into()), &opts, |_, _| {}).await
    } else {
        from_dir(gpu, &weights::DirSource(path.to_path_buf())).await
    }
}

/// A DiT from a path ([`load_path`]), with its index.
#[cfg(not(target_arch = "wasm32"))]
pub async fn dit_at(gpu: &Gpu, path: &std::path::Path) -> Result<(ModelIndex, Dit)> {
    let (index, w) = load_path(gpu, path).await?;
    let cfg = dit_config(&index, &path.display().to_string())?;
    Ok((index, Dit::load(gpu, cfg, w)?))
}

/// A VAE decoder from a path ([`load_path`]).
#[cfg(not(target_arch = "wasm32"))]
pub async fn vae_at(gpu: &Gpu, path: &std::path::Path) -> Result<Vae> {
    let (index, w) = load_path(gpu, path).await?;
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
