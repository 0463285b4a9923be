//! Location in, checked configs and weights on the GPU out: the one loading API of the `dit` CLI and the browser.
//!
//! A location is a model directory written by `dit convert` (a folder natively, a URL in the browser), one checkpoint
//! read by byte ranges (`weights::single`: `.safetensors`, or a PyTorch `.bin` / `.pt`; `#heads=`, `&input_size=`,
//! `#sha256=`), a diffusers folder (natively; a pipeline or one component, `weights::diffusers`), or an `hf://` repo.
//!
//! The steps are written here once for both platforms; only finding and reading bytes differs, in [`Origin`]
//! (`native.rs`: files, and `hf://` repos through the Hub's cache; `browser/`: fetch, Cache Storage and the Hub):
//! 1. [`Origin::open`] finds the model's bytes: a model directory's index is read, a checkpoint file is not yet;
//! 2. [`Planned`] checks the model against the device's limits as soon as its config is known (the index, or the
//!    checkpoint's header), before any weights are read;
//! 3. [`Origin::load`] reads the weights, each tensor verified as it reaches the GPU;
//! 4. the kind and config are checked ([`dit_config`], [`vae_config`]) before the graph is built.
//!
//! [`models`] loads a DiT and its VAE: the VAE named, else the DiT location's own when that is a diffusers pipeline
//! ([`vae_location`]: the one place that rule is written).

use crate::arch::{DitConfig, VaeConfig};
use crate::error::{Error, Result};
use crate::gpu::{AdapterReport, Gpu, Tensor};
use crate::model::{Dit, GpuWeights, Vae};
pub use crate::weights::diffusers::Arch;
use crate::weights::single::{RangeSource, SingleOptions};
use crate::weights::{self, ModelIndex, ModelKind, Source};
use std::collections::BTreeMap;

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
pub use browser::{Fetch, Opened, Origin};
#[cfg(not(target_arch = "wasm32"))]
pub use native::{pipeline_components, resolve_path, Opened, Origin};

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

/// Whether a location is a diffusers pipeline (`model_index.json`), and whether that lists a VAE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bundled {
    /// Not a pipeline: one model.
    No,
    /// A pipeline whose `vae` component this project runs.
    Vae,
    /// A pipeline that lists no `vae`.
    NoVae,
}

/// The VAE of a run: the one named, else the DiT's location itself when it is a diffusers pipeline that lists a
/// `vae` (opened as that component); `None` when neither is there.
pub fn vae_location<'a>(dit: &'a str, vae: Option<&'a str>, bundled: Bundled) -> Result<Option<&'a str>> {
    match (vae.filter(|v| !v.is_empty()), bundled) {
        (Some(v), _) => Ok(Some(v)),
        (None, Bundled::Vae) => Ok(Some(dit)),
        (None, Bundled::NoVae) => {
            Err(Error::input(format!("{dit}: the pipeline lists no `vae`; give the VAE's location")))
        }
        (None, Bundled::No) => Ok(None),
    }
}

/// The error of a run that needs a VAE and has none.
pub fn no_vae(dit: &str) -> Error {
    Error::input(format!("{dit}: a VAE location is needed (only a diffusers pipeline brings its own)"))
}

/// What [`models`] loads.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The DiT's location.
    pub dit: &'a str,
    /// The VAE's location; absent: the DiT location's own when it is a diffusers pipeline ([`vae_location`]).
    pub vae: Option<&'a str>,
    /// The batch the DiT is checked for before its weights are read ([`FIRST_BATCH`] for one guided image).
    pub batch: usize,
    /// Whether a run without a VAE is an error (the browser decodes every image; the CLI may write latents).
    pub need_vae: bool,
}

/// A DiT with its index, and its VAE.
pub struct Models {
    pub index: ModelIndex,
    pub dit: Dit,
    pub vae: Option<Vae>,
}

/// Loads the DiT and the VAE of `req`. Each is checked against the device's limits ([`Planned`]: the DiT at
/// `req.batch`, the VAE at the DiT's latent size) once its config is known and before its weights are read; when the
/// DiT's config is known before its weights (a model directory), the VAE is found and checked before either's weights.
pub async fn models(origin: &Origin, gpu: &Gpu, req: &Request<'_>) -> Result<Models> {
    let dit = origin.open(gpu, req.dit, Arch::Dit, Some(Planned::Dit { batch: req.batch })).await?;
    let Some(vae_at) = vae_location(req.dit, req.vae, dit.bundled())? else {
        // A DiT whose location is not known to be there yet (a file, a Hub repo: only their reads find out) is read
        // first, so that a location that is not there is `not-found` rather than a missing VAE.
        if req.need_vae && dit.index().is_some() {
            return Err(no_vae(req.dit));
        }
        let (index, dit) = build_dit(gpu, origin.load(gpu, dit).await?, req.dit)?;
        if req.need_vae {
            return Err(no_vae(req.dit));
        }
        return Ok(Models { index, dit, vae: None });
    };
    let early = match dit.index() {
        Some(index) => {
            let latent = dit_config(index, req.dit)?.input_size;
            Some(origin.open(gpu, vae_at, Arch::Vae, Some(Planned::Vae { latent })).await?)
        }
        None => None,
    };
    let (index, dit) = build_dit(gpu, origin.load(gpu, dit).await?, req.dit)?;
    let vae = match early {
        Some(v) => v,
        None => origin.open(gpu, vae_at, Arch::Vae, Some(Planned::Vae { latent: dit.cfg.input_size })).await?,
    };
    let vae = build_vae(gpu, origin.load(gpu, vae).await?, vae_at)?;
    origin.finish().await;
    Ok(Models { index, dit, vae: Some(vae) })
}

/// The weights of the `want` model at `location` (a pipeline gives that component), checked against `planned`.
pub async fn weights(
    origin: &Origin,
    gpu: &Gpu,
    location: &str,
    want: Arch,
    planned: Option<Planned>,
) -> Result<(ModelIndex, GpuWeights)> {
    let opened = origin.open(gpu, location, want, planned).await?;
    let loaded = origin.load(gpu, opened).await?;
    origin.finish().await;
    Ok(loaded)
}

/// A DiT at `location` ([`weights`]; a pipeline gives its transformer), with its index.
pub async fn dit(origin: &Origin, gpu: &Gpu, location: &str, planned: Option<Planned>) -> Result<(ModelIndex, Dit)> {
    build_dit(gpu, weights(origin, gpu, location, Arch::Dit, planned).await?, location)
}

/// A VAE decoder at `location` ([`weights`]; a pipeline gives its `vae/`).
pub async fn vae(origin: &Origin, gpu: &Gpu, location: &str, planned: Option<Planned>) -> Result<Vae> {
    build_vae(gpu, weights(origin, gpu, location, Arch::Vae, planned).await?, location)
}

fn build_dit(gpu: &Gpu, (index, w): (ModelIndex, GpuWeights), location: &str) -> Result<(ModelIndex, Dit)> {
    let cfg = dit_config(&index, location)?;
    Ok((index, Dit::load(gpu, cfg, w)?))
}

fn build_vae(gpu: &Gpu, (index, w): (ModelIndex, GpuWeights), location: &str) -> Result<Vae> {
    Vae::load(gpu, vae_config(&index, location)?, w)
}

/// One model's weights, found and not yet read: a model directory with its index read and checked, or one checkpoint
/// file whose check runs on its header ([`SingleOptions::before_tensors`]). `D` and `F` are the platform's byte
/// sources.
pub enum Found<D, F> {
    Dir { src: D, index: ModelIndex },
    File { src: F, opts: SingleOptions },
}

impl<D: Source, F: RangeSource> Found<D, F> {
    /// The model at `location`: one checkpoint file when `single` (its name and fragment split by
    /// `weights::single::parse_location`, the source made by `file`), else a model directory (made by `dir`), its
    /// index read and checked against `planned`.
    pub async fn open(
        gpu: &Gpu,
        location: &str,
        single: bool,
        planned: Option<Planned>,
        (dir, file): (impl FnOnce(&str) -> D, impl FnOnce(&str) -> F),
    ) -> Result<Self> {
        if single {
            let (name, opts) = single_location(gpu, location, planned)?;
            return Ok(Found::File { src: file(name), opts });
        }
        let src = dir(location);
        let index = weights::read_index(&src).await?;
        if let Some(p) = planned {
            p.check(&gpu.report, &index)?;
        }
        Ok(Found::Dir { src, index })
    }

    /// The index, when it is known before the weights are read (a model directory's).
    pub fn index(&self) -> Option<&ModelIndex> {
        match self {
            Found::Dir { index, .. } => Some(index),
            Found::File { .. } => None,
        }
    }

    /// Reads and uploads the weights; a file's progress goes to `progress` (source, bytes read, bytes to read).
    pub async fn load(self, gpu: &Gpu, progress: impl Fn(&F, u64, u64)) -> Result<(ModelIndex, GpuWeights)> {
        match self {
            Found::Dir { src, index } => from_index(gpu, &src, index).await,
            Found::File { src, opts } => from_single(gpu, &src, &opts, |done, all| progress(&src, done, all)).await,
        }
    }
}

/// One checkpoint file's location split into its name and options (`weights::single::parse_location`), its check
/// against `planned` run on its header, before any tensor data is read.
pub fn single_location<'a>(gpu: &Gpu, location: &'a str, planned: Option<Planned>) -> Result<(&'a str, SingleOptions)> {
    let (name, mut opts) = weights::single::parse_location(location)?;
    opts.before_tensors = planned.map(|p| p.before_tensors(gpu)).unwrap_or_default();
    Ok((name, opts))
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
